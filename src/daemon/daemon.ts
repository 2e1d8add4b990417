// The one place that wires the daemon together. Start-up is one ordered list of steps (service
// manager, lock, crash recovery, PID file, control socket, signals, worker, memory guard, health
// checks), each leaving its undo; the undos run in reverse at shutdown and after a failed start alike
// (lifecycle.ts). What each step does is decided elsewhere; this file only orders them and owns
// their lifetimes.

import { existsSync } from 'node:fs';
import { randomBytes } from '../os/random-bytes.js';
import type { Config, ConfigFlags, LoadedConfig } from '../config/types.js';
import { ControlServer } from '../control/server.js';
import type { TreeStatus } from '../control/protocol.js';
import { Logger, isJournaldStream, stderrSink, type LineSink } from '../log/logger.js';
import { removeInstanceRecord, removePidFile, writeInstanceRecord, writePidFile } from '../os/pid-file.js';
import { RotatingLogFile } from '../os/log-file.js';
import { isoTime } from '../log/iso-time.js';
import { ProcTable } from '../os/proc-table.js';
import { TerminalOutput } from '../os/terminal-output.js';
import { protectedPidsOf } from '../os/process-tree.js';
import { loadNative, type NativeLoad } from '../os/native.js';
import { signalPath } from '../os/signal.js';
import { enableDescendantWalk, type DescendantWalker } from '../os/descendant-walk.js';
import { notifierFromEnv, watchdogIntervalMs } from '../os/sd-notify.js';
import { VERSION } from '../version.js';
import { WorkerSupervisor } from './worker-supervisor.js';
import { MemoryGuardLoop } from './memory-guard-loop.js';
import { HealthLoop } from './health-loop.js';
import { TreeTracker } from '../os/tree-tracker.js';
import { daemonLogPath } from './log-path.js';
import { Lifecycle, StepFailure, type LifecycleStep } from './lifecycle.js';
import { controlEventLog } from './control-events.js';
import { makeControlHandler, reloadConfig, statusOf, workerStatusOf, type ControlParts } from './control-handler.js';
import { ownStartTicks, stopOrphanTree, takeInstanceLocks } from './instance-files.js';
import { armFatalStopDeadline } from './fatal-deadline.js';
import { ServiceNotify } from './service-notify.js';
import { Notifier } from './notifier.js';
import type { WorkerCgroups } from '../os/worker-cgroups.js';
import { killLeaf } from '../os/leaf-tree.js';
import { clearLeftovers, openTreeBackend, type TreeBackendDeps } from './tree-backend.js';
import { EventJournal } from './event-journal.js';
import { MetricsRegistry } from './metrics-registry.js';
import { RENDER_REUSE_MS, reusing, serveMetrics } from './metrics-endpoint.js';
import { renderMetrics } from '../control/metrics-text.js';
import { holdFilePlace, removeStaleHoldDirs } from '../os/hold-file.js';

export interface DaemonOptions {
  loaded: LoadedConfig;
  /** Kept to re-read the configuration the same way on reload. */
  reloadInput: { flags: ConfigFlags; env: Record<string, string | undefined>; homeDir: string; cwd: string };
  /** `background`: daemonized by `autopilotd start`; logs go to the log file, worker output too. */
  mode: 'foreground' | 'background';
  /** Told once the daemon listens and the worker's spawn outcome is known, or why start failed. */
  onStartup?: (outcome: StartupOutcome) => void;
  /** Tests inject failures into the worker's spawn and exit handling here (worker-supervisor.ts). */
  workerHooks?: { spawned?: (pid: number) => void; exited?: (pid: number) => void };
}

export type StartupOutcome =
  | { ok: true; pid: number; workerPid: number | null; workerState: string; spawnError: string | null; nativeMissing: string | null }
  | { ok: false; code: string; message: string };

/** Exit code after an internal error (EX_SOFTWARE). */
export const EXIT_INTERNAL_ERROR = 70;
/** Exit code of a start refused for its configuration (EX_CONFIG): `[cgroup] mode = "required"` without a cgroup. */
export const EXIT_CONFIG_ERROR = 78;

/**
 * How long past the worker's stop grace an internal error's shutdown may take before the daemon
 * gives up on order: it SIGKILLs whatever carries its instance marker and exits. Covers a tree stop
 * (its SIGKILL rounds included) on a loaded machine.
 */
export const FATAL_STOP_MARGIN_MS = 10_000;
/** At exit the log file gets this long to take the worker output still queued; a stuck disk must not keep the daemon. */
export const LOG_DRAIN_MS = 2_000;

/** Runs the daemon until it is shut down; resolves with the process exit code. */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const d = assemble(opts);
  const { logger } = d;
  const life = new Lifecycle((step, err) => logger.emit({ kind: 'internal-error', message: `shutdown: undoing "${step}": ${(err as Error)?.message ?? String(err)}` }));
  let exitCode: number | null = null;
  let stopRequested = (): void => {};
  const stopped = new Promise<void>((resolve) => { stopRequested = resolve; });

  /** Begins the shutdown; a second request skips the worker's stop grace (second Ctrl-C). */
  const shutdown = (reason: string, code = 0): void => {
    if (exitCode !== null) {
      logger.emit({ kind: 'daemon-force-stop', reason });
      d.supervisor.forceStop();
      return;
    }
    exitCode = code;
    d.service.stopping(reason);
    logger.emit({ kind: 'daemon-stopping', reason });
    if (code === EXIT_INTERNAL_ERROR) armFatalDeadline(d);
    stopRequested();
  };
  // A bug must not leave the worker tree orphaned: log it, stop the tree in order, exit 70.
  const onFatal = (err: unknown): void => {
    logger.emit({ kind: 'internal-error', message: (err as Error)?.stack ?? String(err) });
    shutdown('internal error', EXIT_INTERNAL_ERROR);
  };

  const began = { ms: 0 };
  void stopped.then(() => { began.ms = Date.now(); return life.undo(); });
  try {
    await life.start(startupSteps(d, { onFatal, shutdown, stopping: () => exitCode !== null }));
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    const e = err.error as Error & { code?: string };
    // "already running" is an answer, not a failure to explain; a configuration problem names its key.
    const plain = (e.code === 'already_running' && err.step === LOCK_STEP) || e.code === 'cgroup_unavailable';
    const message = plain ? e.message : err.message;
    logger.line('error', message);
    opts.onStartup?.({ ok: false, code: e.code ?? 'startup_failed', message });
    await life.undo();
    await closeLogFile(d);
    return e.code === 'cgroup_unavailable' ? EXIT_CONFIG_ERROR : 1;
  }
  if (exitCode === null) {
    logger.emit({ kind: 'daemon-ready', socketPath: d.config.current.socket_path });
    d.service.ready();
    reportStarted(d);
  } else {
    opts.onStartup?.({ ok: false, code: exitCode === EXIT_INTERNAL_ERROR ? 'internal_error' : 'stopped', message: 'the daemon stopped during start-up; see the log' });
  }
  await stopped;
  await life.undo();
  logger.emit({ kind: 'daemon-stopped', durationMs: Date.now() - began.ms });
  await closeLogFile(d);
  return exitCode ?? 0;
}

/** The daemon's parts, built before any step runs; none of them acts until a step starts it. */
interface Daemon {
  opts: DaemonOptions;
  config: { current: Config };
  logger: Logger;
  logFile: RotatingLogFile | null;
  /** Log lines lost so far by whichever sink is in use (the log file, or stderr/journald). */
  logLinesDropped(): number;
  logTarget: string;
  startedAtMs: number;
  instanceId: string;
  uid: number;
  table: ProcTable;
  protectedPids: () => ReadonlySet<number>;
  /** The worker tree as the daemon's descendants; null when the tree is found by scans. */
  walker: DescendantWalker | null;
  supervisor: WorkerSupervisor;
  memoryGuard: MemoryGuardLoop;
  healthLoop: HealthLoop;
  native: NativeLoad;
  service: ServiceNotify;
  /** The cgroup backend once its step has run (null: the /proc rules). */
  cgroups: { current: WorkerCgroups | null };
  /** The log's events for `subscribe`, and the counters for `metrics`: both listen from the first line. */
  journal: EventJournal;
  metrics: MetricsRegistry;
}

function assemble(opts: DaemonOptions): Daemon {
  const config = { current: opts.loaded.config };
  const startedAtMs = Date.now();
  const { logger, logFile, logTarget, logLinesDropped } = makeLogger(config.current, opts.mode);
  const journal = new EventJournal(logger);
  const metrics = new MetricsRegistry(logger);
  const instanceId = randomBytes(9).toString('base64url');
  const uid = process.getuid!();
  const table = new ProcTable();
  // Read afresh at each use: the daemon's ancestors change (a detached daemon's parent, the
  // `start` CLI, exits at once) and a dead ancestor's pid, later reused by a worker descendant,
  // must not shield that descendant from a stop.
  const protectedPids = (): ReadonlySet<number> => protectedPidsOf(table, process.pid);
  logger.emit({ kind: 'daemon-started', pid: process.pid, version: VERSION, instanceId, configPath: opts.loaded.path, logTarget });
  const native = loadNative();
  if (!native.loaded) logger.emit({ kind: 'native-missing', reason: native.reason });
  logger.emit({ kind: 'signal-path', ...signalPath() });
  // Before the first spawn (no step has run yet): from here on every orphan of the daemon's
  // descendants is re-parented to it, and the tree is what it walks (issue #18).
  const treeWalk = enableDescendantWalk(native, table, (r) => logger.emit({ kind: 'orphan-reaped', pid: r.pid, code: r.code, signal: r.signal }));
  if (treeWalk.walker === null) logger.emit({ kind: 'tree-by-scan', reason: treeWalk.reason });
  const walker = treeWalk.walker;
  const cgroups: Daemon['cgroups'] = { current: null };
  const supervisor = new WorkerSupervisor(config.current, {
    logger, table, instanceId, uid, protectedPids, walker, cgroups: () => cgroups.current,
    // pid_file never changes under a running daemon (a reload says it takes effect at restart).
    holdFiles: holdFilePlace(config.current.pid_file),
    // Under journald too: passed through, the worker's lines would reach the journal as the daemon's
    // own, stdout and stderr alike (systemd hands both one stream), and a `<N>` of its own would set
    // their priority. Logged, each line carries worker[N] or worker[N,stderr] (#16).
    output: opts.mode === 'background' || logTarget === 'journald' ? 'log' : terminalOutput(logger),
    hooks: opts.workerHooks,
  });
  // One tracker for both loops that sample the tree: they share its full /proc scans.
  const tracker = new TreeTracker(table, { walker, cgroupLeaf: () => supervisor.treeLeaf() });
  const memoryGuard = new MemoryGuardLoop(config.current, {
    logger, table, uid, protectedPids, tree: tracker, treeLeaf: () => supervisor.treeLeaf(),
    treeIdentity: () => supervisor.treeIdentity(),
    workerRunning: () => supervisor.state.state === 'running',
    restartWorker: () => supervisor.restart('memory'),
  });
  const healthLoop = new HealthLoop(config.current, { logger, table, tracker, worker: supervisor });
  const service = new ServiceNotify({
    notifier: notifierFromEnv(process.env, { native, onError: (message) => logger.emit({ kind: 'sd-notify-failed', message }) }),
    watchdogMs: watchdogIntervalMs(process.env, process.pid),
    logger, supervisor, memoryGuard,
  });
  return { opts, config, logger, logFile, logLinesDropped, logTarget, startedAtMs, instanceId, uid, table, protectedPids, walker, supervisor, memoryGuard, healthLoop, native, service, cgroups, journal, metrics };
}

interface Control {
  onFatal(err: unknown): void;
  shutdown(reason: string): void;
  stopping(): boolean;
}

const LOCK_STEP = 'take the instance locks';

/** Start-up in order; each step's undo runs in reverse at shutdown. */
function startupSteps(d: Daemon, control: Control): LifecycleStep[] {
  const { logger, supervisor, memoryGuard, healthLoop } = d;
  const pidFile = d.config.current.pid_file;
  const parts: ControlParts = {
    opts: d.opts, logger, logTarget: d.logTarget, startedAtMs: d.startedAtMs, supervisor, memoryGuard, healthLoop, config: d.config,
    native: d.native, service: d.service,
    shutdown: control.shutdown, shuttingDown: control.stopping,
    tree: () => treeStatus(d),
    // One text for a burst of scrapes, over the socket and HTTP alike (metrics-endpoint.ts).
    metricsText: reusing(() => renderMetrics(d.metrics.input(statusOf(parts, { treeListing: false }), { logLinesDropped: d.logLinesDropped(), events: d.journal.lastSeq })), RENDER_REUSE_MS),
  };
  return [
    {
      name: 'catch internal errors',
      start: () => {
        process.on('uncaughtException', control.onFatal);
        process.on('unhandledRejection', control.onFatal);
        return () => {
          process.off('uncaughtException', control.onFatal);
          process.off('unhandledRejection', control.onFatal);
        };
      },
    },
    {
      // A zombie the daemon adopted is reaped when it ends, not only at the next walk; libuv's own
      // children are left to libuv (child-registry.ts). Node's SIGCHLD listener sits beside libuv's.
      name: 'reap adopted orphans',
      start: () => {
        const walker = d.walker;
        if (walker === null) return;
        const onChild = (): void => walker.reapAdopted();
        process.on('SIGCHLD', onChild);
        return () => { process.off('SIGCHLD', onChild); };
      },
    },
    {
      // Before anything slow, and undone last: the watchdog is fed through the whole start and shutdown.
      name: 'tell the service manager',
      start: () => d.service.start(),
    },
    {
      name: LOCK_STEP,
      start: () => {
        const locks = takeInstanceLocks(d.config.current);
        return () => { for (const lock of [...locks].reverse()) lock.release(); };
      },
    },
    {
      // Once the lock is held (a predecessor's leftover leaves are ours to clear, in the next step),
      // before the pid file and the worker (`required` fails here, nothing written); undone after
      // the worker is stopped: the leaves, then the private dir.
      name: 'set up the worker tree backend',
      start: async () => {
        d.cgroups.current = await openTreeBackend(treeBackendDeps(d));
        return () => {
          const cgroups = d.cgroups.current;
          d.cgroups.current = null;
          cgroups?.dispose();
        };
      },
    },
    {
      name: 'write the pid file',
      start: async () => {
        const record = {
          pid: process.pid, instance_id: d.instanceId, started_at: isoTime(d.startedAtMs), start_ticks: ownStartTicks(d.table),
          // What a client needs to find this daemon once the configuration has changed or broken.
          socket_path: d.config.current.socket_path, config_path: d.opts.loaded.path,
        };
        await stopOrphanTree(d.config.current, d.table, d.uid, d.protectedPids, logger);
        // What a predecessor killed with SIGKILL left of its hold files: ours to remove, we hold the lock.
        removeStaleHoldDirs(holdFilePlace(pidFile));
        // What the marker missed (an escapee that cleared its environment) is still in the old leaves.
        if (d.cgroups.current !== null) await clearLeftovers(d.cgroups.current, treeBackendDeps(d));
        const undo = (): void => {
          removePidFile(pidFile, process.pid);
          removeInstanceRecord(pidFile, d.instanceId);
        };
        try {
          writePidFile(pidFile, process.pid);
          writeInstanceRecord(pidFile, record);
        } catch (err) {
          undo();
          throw err;
        }
        return undo;
      },
    },
    {
      // Undone once the worker is stopped and the socket closed, while the instance is still locked:
      // daemon-stop is sent then, and the commands still running get their timeout at most.
      name: 'start the notifications',
      start: () => new Notifier({
        config: () => d.config.current, logger, table: d.table, uid: d.uid, protectedPids: d.protectedPids, instanceId: d.instanceId,
        workerStatus: () => workerStatusOf(parts),
      }).start(),
    },
    {
      name: 'open the control socket',
      start: async () => {
        const server = await ControlServer.listen({
          socketPath: d.config.current.socket_path,
          handler: makeControlHandler(parts),
          // A stop may take the whole grace: the CLI's own wait (grace + 30 s) ends before this does.
          handlerTimeoutMs: d.config.current.worker.stop_timeout_ms + 60_000,
          events: d.journal,
          // Who sent each command, for the operator lines; without the helper: "client pid unknown".
          ...(parts.native.loaded ? { peerCred: parts.native.helper.peerCred } : {}),
          onEvent: (e) => {
            d.metrics.controlEvent(e);
            // In words: an internal structure is never logged raw (control-events.ts).
            logger.emit(controlEventLog(e));
          },
        });
        d.metrics.attachControl(server);
        // Closed only after the reply to a `shutdown` request had its turn to be written.
        return async () => {
          await new Promise((r) => setImmediate(r));
          await server.close();
          d.metrics.attachControl(null);
        };
      },
    },
    {
      // Off unless [metrics].listen is set; a port that cannot be bound fails the start, as the socket does.
      name: 'serve metrics over HTTP',
      start: () => serveMetrics(d.config.current.metrics.listen, parts.metricsText, logger),
    },
    {
      name: 'handle signals',
      start: () => {
        const onSignal = (signal: NodeJS.Signals): void => control.shutdown(signal);
        const onHangup = (): void => {
          try {
            logger.emit({ kind: 'operator-command', command: 'reload', pid: null, uid: null, via: 'SIGHUP' });
            reloadConfig(parts);
          } catch {
            // Logged by reloadConfig(); a bad file on SIGHUP keeps the old configuration.
          }
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        process.on('SIGHUP', onHangup);
        return () => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          process.off('SIGHUP', onHangup);
        };
      },
    },
    {
      name: 'start the worker',
      start: async () => {
        await supervisor.start();
        return async () => {
          await supervisor.stop();
          supervisor.dispose();
        };
      },
    },
    {
      name: 'start the memory guard',
      start: () => {
        memoryGuard.start();
        return () => memoryGuard.stop();
      },
    },
    {
      name: 'start the health checks',
      start: () => {
        healthLoop.start();
        return () => healthLoop.stop();
      },
    },
  ];
}

function treeBackendDeps(d: Daemon): TreeBackendDeps {
  return { loaded: d.opts.loaded, table: d.table, uid: d.uid, protectedPids: d.protectedPids, logger: d.logger, startTicks: ownStartTicks(d.table) };
}

/** Status `tree`: the backend, and the current generation's leaf while it exists. */
function treeStatus(d: Daemon): TreeStatus {
  const cgroups = d.cgroups.current;
  const leaf = d.supervisor.treeLeaf();
  return { backend: cgroups === null ? 'proc' : 'cgroup', cgroup: cgroups?.home ?? null, leaf: leaf !== null && existsSync(leaf) ? leaf : null };
}

function reportStarted(d: Daemon): void {
  const w = d.supervisor.state;
  d.opts.onStartup?.({
    ok: true, pid: process.pid, workerPid: w.pid, workerState: w.state,
    spawnError: w.pid === null && w.state !== 'stopped' ? 'the worker could not be spawned; see the log' : null,
    nativeMissing: d.native.loaded ? null : d.native.reason,
  });
}

/** The foreground's stdout and stderr, for the worker's output to pass through unchanged (#17). */
function terminalOutput(logger: Logger): { stdout: TerminalOutput; stderr: TerminalOutput } {
  const onProblem = (message: string): void => logger.emit({ kind: 'log-problem', message });
  return { stdout: new TerminalOutput(process.stdout, 'stdout', onProblem), stderr: new TerminalOutput(process.stderr, 'stderr', onProblem) };
}

function armFatalDeadline(d: Daemon): void {
  armFatalStopDeadline({
    deadlineMs: d.config.current.worker.stop_timeout_ms + FATAL_STOP_MARGIN_MS,
    identity: () => ({ root: null, pgid: null, instanceId: d.instanceId, uid: d.uid, protectedPids: d.protectedPids() }),
    table: d.table,
    walker: d.walker,
    logger: d.logger,
    exit: () => {
      killLeafAtFatalExit(d);
      d.logFile?.close();
      process.exit(EXIT_INTERNAL_ERROR);
    },
  });
}

/** With the cgroup backend, cgroup.kill reaches what the marker cannot (the successor would stop it otherwise). */
function killLeafAtFatalExit(d: Daemon): void {
  const leaf = d.supervisor.treeLeaf();
  if (leaf === null) return;
  try {
    killLeaf(d.table, leaf, { root: null, pgid: null, instanceId: d.instanceId, uid: d.uid, protectedPids: d.protectedPids() });
  } catch (err) {
    d.logger.emit({ kind: 'internal-error', message: `cgroup.kill of ${leaf}: ${(err as Error).message}` });
  }
}

/** Writes the queued worker output (for at most LOG_DRAIN_MS) and closes the log file. */
async function closeLogFile(d: Daemon): Promise<void> {
  const logFile = d.logFile;
  if (logFile === null) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([logFile.drain(), new Promise<void>((resolve) => (timer = setTimeout(resolve, LOG_DRAIN_MS)))]);
  clearTimeout(timer);
  logFile.close();
}

/** The logger, and where it writes: the log file's path, 'journald' or 'stderr' (status shows it). */
function makeLogger(config: Config, mode: DaemonOptions['mode']): { logger: Logger; logFile: RotatingLogFile | null; logTarget: string; logLinesDropped: () => number } {
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
    // Worker output is queued and written off the event loop (writeSoon); daemon events at once.
    const sink: LineSink = { write: (line) => logFile.write(line), writeSoon: (text, lines) => logFile.writeSoon(text, lines) };
    logger = new Logger(sink, 'plain', config.log_level);
    return { logger, logFile, logTarget: logFile.path, logLinesDropped: () => logFile.droppedLines };
  }
  const style = isJournaldStream(process.env) ? 'journald' : 'plain';
  let logger: Logger | null = null;
  // Told once per streak of failed writes; the line itself goes to subscribers, and to stderr once it works again.
  const sink = stderrSink(process.stderr, (message) => logger?.emit({ kind: 'log-problem', message }));
  logger = new Logger(sink, style, config.log_level);
  return { logger, logFile: null, logTarget: style === 'journald' ? 'journald' : 'stderr', logLinesDropped: () => sink.droppedLines ?? 0 };
}
