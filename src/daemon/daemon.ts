// The one place that wires the daemon together: lock, crash recovery, PID file, control socket,
// worker supervisor, memory guard, signals. Everything it calls decides or acts on its own; this
// file only orders them and owns their lifetimes.

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config, ConfigFlags, LoadedConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { ControlError, type Command } from '../control/protocol.js';
import { ControlServer } from '../control/server.js';
import { Logger, isJournaldStream, stderrSink, type LineSink } from '../log/logger.js';
import { acquireInstanceLock, type InstanceLock } from '../os/instance-lock.js';
import { readInstanceRecord, removeInstanceRecord, removePidFile, writeInstanceRecord, writePidFile } from '../os/pid-file.js';
import { RotatingLogFile } from '../os/log-file.js';
import { ProcTable } from '../os/proc-table.js';
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

  let lock: InstanceLock;
  try {
    lock = await acquireInstanceLock(config.socket_path, uid);
  } catch (err) {
    const e = err as Error & { code?: string };
    logger.line('error', e.message);
    opts.onStartup?.({ ok: false, code: e.code ?? 'lock_failed', message: e.message });
    logFile?.close();
    return 1;
  }

  const table = new ProcTable();
  // Read afresh at each use: the daemon's ancestors change (a detached daemon's parent, the
  // `start` CLI, exits at once) and a dead ancestor's pid, later reused by a worker descendant,
  // must not shield that descendant from a stop.
  const protectedPids = (): ReadonlySet<number> => protectedPidsOf(table, process.pid);
  const record = { pid: process.pid, instance_id: instanceId, started_at: new Date(startedAtMs).toISOString() };
  try {
    await stopOrphanTree(config, table, uid, protectedPids, logger);
    mkdirSync(dirname(config.pid_file), { recursive: true, mode: 0o700 });
    writePidFile(config.pid_file, process.pid);
    writeInstanceRecord(config.pid_file, { ...record, worker: null });
  } catch (err) {
    // E.g. pid_file under a regular file. Release the lock: its listener would otherwise keep this
    // process (and the lock) alive forever, and `start` would wait for an outcome that never comes.
    const message = `cannot start: ${(err as Error).message}`;
    logger.line('error', message);
    opts.onStartup?.({ ok: false, code: 'startup_failed', message });
    try {
      removePidFile(config.pid_file, process.pid);
    } catch (cleanupErr) {
      logger.line('warn', `cannot remove the pid file: ${(cleanupErr as Error).message}`);
    }
    await lock.release();
    logFile?.close();
    return 1;
  }

  const supervisor = new WorkerSupervisor(config, {
    logger, table, instanceId, uid, protectedPids,
    output: opts.mode === 'background' ? 'pipe' : 'inherit',
    onSpawned: (worker) => writeInstanceRecord(config.pid_file, { ...record, worker }),
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
      await attempt('releasing the instance lock', () => lock.release());
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
    await lock.release();
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
      onProblem: (message) => logger?.line('warn', `log: ${message}`),
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
 * After a daemon was killed with SIGKILL its worker tree may live on. Its instance id is in the
 * record beside the PID file; stop every process carrying that marker before spawning: never two
 * workers. Only the marker is trusted here: the recorded PID and PGID may have been reused since.
 */
async function stopOrphanTree(config: Config, table: ProcTable, uid: number, protectedPids: () => ReadonlySet<number>, logger: Logger): Promise<void> {
  const previous = readInstanceRecord(config.pid_file);
  if (previous === null) return;
  const identity = { root: null, pgid: null, instanceId: previous.instance_id, uid, protectedPids: protectedPids() };
  const members = findTree(table, identity);
  if (members.length > 0) {
    logger.emit({ kind: 'orphan-tree-found', instanceId: previous.instance_id, previousPid: previous.pid, pids: members.map((p) => p.pid) });
    await stopTree({ table, identity, graceMs: config.worker.stop_timeout_ms });
  }
  removeInstanceRecord(config.pid_file, previous.instance_id);
}
