// The one place that wires the daemon together: lock, crash recovery, PID file, control socket,
// worker supervisor, memory guard, signals. Everything it calls decides or acts on its own; this
// file only orders them and owns their lifetimes.

import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import type { Config, ConfigFlags, LoadedConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { ControlError, type Command } from '../control/protocol.js';
import { ControlServer } from '../control/server.js';
import { Logger, isJournaldStream, stderrSink, type LineSink } from '../log/logger.js';
import { acquireInstanceLock, lockPathFor, type InstanceLock } from '../os/instance-lock.js';
import { readInstanceRecord, removeInstanceRecord, removePidFile, writeInstanceRecord, writePidFile, type InstanceRecord } from '../os/pid-file.js';
import { RotatingLogFile } from '../os/log-file.js';
import { ensurePrivateDir } from '../os/private-dir.js';
import { ProcTable } from '../os/proc-table.js';
import { isLiveProcessOf } from '../os/process-alive.js';
import { findTree, protectedPidsOf } from '../os/process-tree.js';
import { stopTree } from '../os/tree-stop.js';
import { VERSION } from '../version.js';
import { WorkerSupervisor } from './worker-supervisor.js';
import { MemoryGuardLoop } from './memory-guard-loop.js';
import { buildStatus } from './status.js';
import { daemonLogPath } from './log-path.js';

export interface DaemonOptions {
  loaded: LoadedConfig;
  /** Kept to re-read the configuration the same way on reload. */
  reloadInput: { flags: ConfigFlags; env: Record<string, string | undefined>; homeDir: string; cwd: string };
  /** `background`: daemonized by `autopilotd start`; logs go to the log file, worker output too. */
  mode: 'foreground' | 'background';
  /** Told once the daemon listens and the worker's spawn outcome is known, or why start failed. */
  onStartup?: (outcome: StartupOutcome) => void;
}

export type StartupOutcome =
  | { ok: true; pid: number; workerPid: number | null; workerState: string; spawnError: string | null }
  | { ok: false; code: string; message: string };

/** Runs the daemon until it is shut down; resolves with the process exit code. */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  let config = opts.loaded.config;
  const startedAtMs = Date.now();
  const { logger, logFile, logTarget } = makeLogger(config, opts.mode);
  const instanceId = randomBytes(9).toString('base64url');
  const uid = process.getuid!();
  logger.emit({ kind: 'daemon-started', pid: process.pid, version: VERSION, instanceId, configPath: opts.loaded.path, logTarget });

  let locks: InstanceLock[];
  try {
    locks = takeInstanceLocks(config);
  } catch (err) {
    const e = err as Error & { code?: string };
    const message = e.code === 'already_running' ? e.message : `cannot start: ${e.message}`;
    logger.line('error', message);
    opts.onStartup?.({ ok: false, code: e.code ?? 'lock_failed', message });
    logFile?.close();
    return 1;
  }
  const releaseLocks = (): void => {
    for (const lock of [...locks].reverse()) lock.release();
  };

  const table = new ProcTable();
  // Read afresh at each use: the daemon's ancestors change (a detached daemon's parent, the
  // `start` CLI, exits at once) and a dead ancestor's pid, later reused by a worker descendant,
  // must not shield that descendant from a stop.
  const protectedPids = (): ReadonlySet<number> => protectedPidsOf(table, process.pid);
  let record: InstanceRecord;
  try {
    record = {
      pid: process.pid, instance_id: instanceId, started_at: new Date(startedAtMs).toISOString(), start_ticks: ownStartTicks(table),
      // What a client needs to find this daemon once the configuration has changed or broken.
      socket_path: config.socket_path, config_path: opts.loaded.path,
    };
    await stopOrphanTree(config, table, uid, protectedPids, logger);
    writePidFile(config.pid_file, process.pid);
    writeInstanceRecord(config.pid_file, record);
  } catch (err) {
    // E.g. the pid file's directory is not writable.
    const message = `cannot start: ${(err as Error).message}`;
    logger.line('error', message);
    opts.onStartup?.({ ok: false, code: 'startup_failed', message });
    try {
      removePidFile(config.pid_file, process.pid);
    } catch (cleanupErr) {
      logger.line('warn', `cannot remove the pid file: ${(cleanupErr as Error).message}`);
    }
    releaseLocks();
    logFile?.close();
    return 1;
  }

  const supervisor = new WorkerSupervisor(config, {
    logger, table, instanceId, uid, protectedPids,
    output: opts.mode === 'background' ? 'pipe' : 'inherit',
  });
  const memoryGuard = new MemoryGuardLoop(config, {
    logger, table, uid, protectedPids,
    treeIdentity: () => supervisor.treeIdentity(),
    workerRunning: () => supervisor.state.state === 'running',
    restartWorker: () => supervisor.restart('memory'),
  });

  let shutdownPromise: Promise<void> | null = null;
  let finished: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => { finished = resolve; });

  /** Each cleanup step runs even when an earlier one failed; a failure is logged, never thrown. */
  const attempt = async (what: string, step: () => unknown): Promise<void> => {
    try {
      await step();
    } catch (err) {
      logger.emit({ kind: 'internal-error', message: `shutdown: ${what}: ${(err as Error).message}` });
    }
  };

  const shutdown = (reason: string, exitCode = 0): Promise<void> => {
    if (shutdownPromise) {
      logger.emit({ kind: 'daemon-force-stop', reason });
      supervisor.forceStop();
      return shutdownPromise;
    }
    logger.emit({ kind: 'daemon-stopping', reason });
    const began = Date.now();
    memoryGuard.stop();
    shutdownPromise = supervisor.stop();
    // Close the socket only after the reply to a `shutdown` request had its turn to be written.
    void shutdownPromise.then(() => new Promise((r) => setImmediate(r))).then(async () => {
      await attempt('closing the control socket', () => server?.close());
      await attempt('removing the pid file', () => removePidFile(config.pid_file, process.pid));
      await attempt('removing the instance record', () => removeInstanceRecord(config.pid_file, instanceId));
      await attempt('releasing the instance locks', releaseLocks);
      logger.emit({ kind: 'daemon-stopped', durationMs: Date.now() - began });
      logFile?.close();
      finished(exitCode);
    });
    return shutdownPromise;
  };

  // A bug must not leave the worker tree orphaned: log it, stop the tree in order, exit 70 (EX_SOFTWARE).
  const onFatal = (err: unknown): void => {
    logger.emit({ kind: 'internal-error', message: (err as Error)?.stack ?? String(err) });
    void shutdown('internal error', 70);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  const reload = (): void => {
    let next: LoadedConfig;
    try {
      next = loadConfig(opts.reloadInput);
    } catch (err) {
      const message = err instanceof ConfigError ? err.message : (err as Error).message;
      logger.emit({ kind: 'config-reload-rejected', message });
      throw new ControlError('invalid_config', message);
    }
    config = applyReload(config, next.config, logger);
    supervisor.updateConfig(config);
    memoryGuard.updateConfig(config);
    logger.emit({ kind: 'config-reloaded', path: next.path });
  };

  const handler = async (cmd: Command): Promise<unknown> => {
    if (shutdownPromise && cmd !== 'status' && cmd !== 'shutdown') {
      throw new ControlError('shutting_down', 'the daemon is shutting down');
    }
    switch (cmd) {
      case 'status':
        return buildStatus({
          nowMs: Date.now(),
          daemon: { pid: process.pid, version: VERSION, startedAtMs, configPath: opts.loaded.path, logTarget },
          worker: supervisor.state,
          command: supervisor.argv,
          memory: memoryGuard.status(),
        });
      case 'restart-worker': await supervisor.restart('operator'); return workerSummary(supervisor);
      case 'stop-worker': await supervisor.stop(); return workerSummary(supervisor);
      case 'start-worker': await supervisor.start(); return workerSummary(supervisor);
      case 'reload': reload(); return { reloaded: true, config_path: opts.loaded.path };
      case 'shutdown': await shutdown('control request'); return { stopped: true };
    }
  };

  let server: ControlServer | null = null;
  try {
    server = await ControlServer.listen({
      socketPath: config.socket_path,
      handler,
      onEvent: (e) => {
        if (e.type === 'handler_error' || e.type === 'connection_error') logger.emit({ kind: 'control-error', message: JSON.stringify(e) });
      },
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    logger.line('error', `cannot open the control socket: ${e.message}`);
    opts.onStartup?.({ ok: false, code: e.code ?? 'socket_failed', message: e.message });
    removePidFile(config.pid_file, process.pid);
    removeInstanceRecord(config.pid_file, instanceId);
    releaseLocks();
    logFile?.close();
    return 1;
  }
  logger.emit({ kind: 'daemon-ready', socketPath: config.socket_path });

  const onSignal = (signal: NodeJS.Signals): void => void shutdown(signal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const onHangup = (): void => {
    try {
      reload();
    } catch {
      // Already logged by reload(); a bad file on SIGHUP keeps the old configuration.
    }
  };
  process.on('SIGHUP', onHangup);

  memoryGuard.start();
  await supervisor.start();
  const w = supervisor.state;
  opts.onStartup?.({
    ok: true, pid: process.pid, workerPid: w.pid, workerState: w.state,
    spawnError: w.pid === null && w.state !== 'stopped' ? 'the worker could not be spawned; see the log' : null,
  });

  const code = await done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  process.off('SIGHUP', onHangup);
  process.off('uncaughtException', onFatal);
  process.off('unhandledRejection', onFatal);
  return code;
}

/** This process's start time in clock ticks, as /proc shows it to whoever checks the record. */
function ownStartTicks(table: ProcTable): number {
  const self = table.read(process.pid);
  if (self === null) throw new Error(`cannot read /proc/${process.pid}/stat: our own process is not listed`);
  return self.startTimeTicks;
}

function workerSummary(supervisor: WorkerSupervisor): { state: string; pid: number | null; generation: number } {
  const w = supervisor.state;
  return { state: w.state, pid: w.pid, generation: w.generation };
}

/** The logger, and where it writes: the log file's path, 'journald' or 'stderr' (status shows it). */
function makeLogger(config: Config, mode: DaemonOptions['mode']): { logger: Logger; logFile: RotatingLogFile | null; logTarget: string } {
  if (mode === 'background') {
    let logger: Logger | null = null;
    const logFile = new RotatingLogFile({
      path: daemonLogPath(config),
      maxFileBytes: config.logs.max_file_bytes,
      maxFiles: config.logs.max_files,
      // Also to the raw output (autopilotd.stderr.log): the log file is what is failing.
      onProblem: (message) => {
        process.stderr.write(`autopilotd: log: ${message}\n`);
        logger?.emit({ kind: 'log-problem', message });
      },
    });
    const sink: LineSink = { write: (line) => logFile.write(line) };
    logger = new Logger(sink, 'plain', config.log_level);
    return { logger, logFile, logTarget: logFile.path };
  }
  const style = isJournaldStream(process.env) ? 'journald' : 'plain';
  return { logger: new Logger(stderrSink(), style, config.log_level), logFile: null, logTarget: style === 'journald' ? 'journald' : 'stderr' };
}

/**
 * Memory, restart and log-level settings apply at once; worker settings at the next spawn.
 * Where the daemon listens and writes its PID cannot move while it runs: those keep their value.
 */
function applyReload(current: Config, next: Config, logger: Logger): Config {
  logger.setLevel(next.log_level);
  const fixed = (['socket_path', 'pid_file'] as const).filter((k) => current[k] !== next[k]);
  for (const key of fixed) logger.line('warn', `reload: ${key} changed; it takes effect when the daemon restarts`);
  return { ...next, socket_path: current.socket_path, pid_file: current.pid_file, logs: current.logs };
}

/**
 * The pid file's lock, then the socket's, each beside its file: two configurations that share
 * either one are the same daemon, and the second is refused before it touches anything.
 */
function takeInstanceLocks(config: Config): InstanceLock[] {
  const locks: InstanceLock[] = [];
  try {
    for (const guarded of new Set([config.pid_file, config.socket_path])) {
      // Private first: the lock file, and later the previous record, are trusted only from there.
      ensurePrivateDir(dirname(guarded));
      locks.push(acquireInstanceLock(lockPathFor(guarded)));
    }
  } catch (err) {
    for (const lock of locks) lock.release();
    throw err;
  }
  return locks;
}

/**
 * After a daemon was killed with SIGKILL its worker tree may live on. Its instance id is in the
 * record beside the PID file; stop every process carrying that marker before spawning: never two
 * workers. The marker finds the tree; the recorded daemon (pid and start time) only ever holds the
 * stop back. The record itself is trusted only as our own file in our private directory (pid-file.ts).
 */
async function stopOrphanTree(config: Config, table: ProcTable, uid: number, protectedPids: () => ReadonlySet<number>, logger: Logger): Promise<void> {
  const previous = readInstanceRecord(config.pid_file, (reason) => logger.emit({ kind: 'instance-record-ignored', reason }));
  if (previous === null) return;
  // Holding the pid file's lock, the record's daemon should be dead. Should: one that lost its lock
  // (someone removed the lock file) or predates it is alive, and its tree is its live worker, no
  // orphan (issue #14, items 3 and 7). A start never stops that; the record is left where it is.
  if (isAlive(table, previous, uid, protectedPids())) {
    logger.emit({ kind: 'previous-daemon-alive', instanceId: previous.instance_id, previousPid: previous.pid });
    return;
  }
  const identity = { root: null, pgid: null, instanceId: previous.instance_id, uid, protectedPids: protectedPids() };
  const members = findTree(table, identity);
  if (members.length > 0) {
    logger.emit({ kind: 'orphan-tree-found', instanceId: previous.instance_id, previousPid: previous.pid, pids: members.map((p) => p.pid) });
    await stopTree({ table, identity, graceMs: config.worker.stop_timeout_ms });
  }
  removeInstanceRecord(config.pid_file, previous.instance_id);
}

/** Whether the daemon that wrote the record runs: its pid, with the start time it recorded, not a zombie. */
/**
 * Whether the record's daemon still runs: a live process of ours with the recorded start time (a
 * record from before issue #14 has none: then any live process of ours at that pid). A pid of
 * this daemon or of an ancestor was reused: that one is dead.
 */
function isAlive(table: ProcTable, record: InstanceRecord, uid: number, protectedPids: ReadonlySet<number>): boolean {
  if (protectedPids.has(record.pid) || !isLiveProcessOf(table, record.pid, uid)) return false;
  return record.start_ticks === null || table.read(record.pid)?.startTimeTicks === record.start_ticks;
}
