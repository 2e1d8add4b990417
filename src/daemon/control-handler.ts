// The control commands: what each request over the socket does to the running daemon, and the
// reload that `reload` and SIGHUP share. The daemon's parts are handed in; this file owns none.

import type { Config, LoadedConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { ControlError, type Command, type StatusData, type TreeStatus } from '../control/protocol.js';
import { METRICS_CONTENT_TYPE } from '../control/metrics-text.js';
import type { Logger } from '../log/logger.js';
import { VERSION } from '../version.js';
import type { DaemonOptions } from './daemon.js';
import type { MemoryGuardLoop } from './memory-guard-loop.js';
import type { HealthLoop } from './health-loop.js';
import type { NativeLoad } from '../os/native.js';
import type { ServiceNotify } from './service-notify.js';
import { buildStatus, buildWorkerStatus, type WorkerStatusInputs } from './status.js';
import { configChanges } from './config-diff.js';
import type { ClientPeer } from '../control/connection.js';
import type { WorkerSupervisor } from './worker-supervisor.js';

export interface ControlParts {
  opts: DaemonOptions;
  logger: Logger;
  logTarget: string;
  startedAtMs: number;
  supervisor: WorkerSupervisor;
  memoryGuard: MemoryGuardLoop;
  healthLoop: HealthLoop;
  /** The configuration now; reload replaces it. */
  config: { current: Config };
  native: NativeLoad;
  /** Told of a reload's start and end (RELOADING=1 ... READY=1). */
  service: ServiceNotify;
  /** Begins the daemon's shutdown (idempotent); true once it has begun. */
  shutdown(reason: string): void;
  shuttingDown(): boolean;
  /** How the worker tree is found (status `tree`). */
  tree(): TreeStatus;
  /** The Prometheus text of `metrics` (metrics-registry.ts). */
  metricsText(): string;
}

export type ControlHandler = (cmd: Command, args: Record<string, unknown>, peer: ClientPeer | null) => Promise<unknown>;

/** Commands that only read: not operator actions, not logged (a `status --watch` would flood the log). */
const READ_ONLY: ReadonlySet<Command> = new Set(['status', 'metrics', 'subscribe']);

export function makeControlHandler(parts: ControlParts): ControlHandler {
  const { supervisor } = parts;
  return async (cmd, _args, peer) => {
    if (parts.shuttingDown() && cmd !== 'status' && cmd !== 'shutdown' && cmd !== 'metrics') {
      throw new ControlError('shutting_down', 'the daemon is shutting down');
    }
    if (!READ_ONLY.has(cmd)) parts.logger.emit({ kind: 'operator-command', command: cmd, pid: peer?.pid ?? null, uid: peer?.uid ?? null, via: 'socket' });
    switch (cmd) {
      case 'status': return statusOf(parts);
      case 'metrics': return { content_type: METRICS_CONTENT_TYPE, text: parts.metricsText() };
      // The connection streams it (control/subscription.ts); it never reaches a handler.
      case 'subscribe': throw new ControlError('bad_request', 'subscribe is not served here');
      case 'restart-worker': await supervisor.restart('operator'); return workerSummary(supervisor);
      case 'stop-worker': await supervisor.stop(); return workerSummary(supervisor);
      case 'start-worker': await supervisor.start(); return workerSummary(supervisor);
      case 'reload': reloadConfig(parts); return { reloaded: true, config_path: parts.opts.loaded.path };
      case 'shutdown':
        // Replied once the worker tree is gone; the socket closes after this reply went out.
        parts.shutdown('control request');
        await supervisor.stop();
        return { stopped: true };
    }
  };
}

/**
 * The `status` reply. With `treeListing: false` (metrics, which never shows it) the tree's
 * processes are left out, so no /proc/PID/cmdline is read for it: `tree.processes` is empty.
 */
export function statusOf(parts: ControlParts, opts: { treeListing?: boolean } = {}): StatusData {
  const { opts: daemonOpts } = parts;
  return buildStatus({
    ...workerInputs(parts),
    daemon: {
      pid: process.pid, version: VERSION, startedAtMs: parts.startedAtMs, configPath: daemonOpts.loaded.path, logTarget: parts.logTarget,
      native: parts.native.loaded ? { loaded: true, reason: null } : { loaded: false, reason: parts.native.reason },
    },
    memory: parts.memoryGuard.status(),
    tree: parts.tree(),
    // After memory: its fresh look is what this lists.
    treeListing: opts.treeListing === false ? null : parts.memoryGuard.treeListing(100),
  });
}

/** The status `worker` part alone, as `status` shows it: the notifier's payload (no memory look, no tree). */
export function workerStatusOf(parts: ControlParts): StatusData['worker'] {
  return buildWorkerStatus(workerInputs(parts));
}

function workerInputs(parts: ControlParts): WorkerStatusInputs {
  const { supervisor } = parts;
  const wall = supervisor.wallTimes;
  return {
    nowMs: Date.now(),
    worker: supervisor.state,
    workerClock: { nowMs: supervisor.clockMs(), startedAtWallMs: wall.startedAtMs, lastExitAtWallMs: wall.lastExitAtMs },
    command: supervisor.argv,
    lastExitTail: supervisor.lastExitTail(),
    config: parts.config.current,
    lastSpawnError: supervisor.lastSpawnError,
  };
}

/** Re-reads the configuration as the start did; a bad one is logged, refused, and changes nothing. */
export function reloadConfig(parts: ControlParts): void {
  parts.service.reloading();
  try {
    applyNewConfig(parts);
  } finally {
    parts.service.reloaded();
  }
}

function applyNewConfig(parts: ControlParts): void {
  const { logger } = parts;
  let next: LoadedConfig;
  try {
    next = loadConfig(parts.opts.reloadInput);
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : (err as Error).message;
    logger.emit({ kind: 'config-reload-rejected', message });
    throw new ControlError('invalid_config', message);
  }
  const before = parts.config.current;
  const config = applyReload(before, next.config, logger);
  parts.config.current = config;
  parts.supervisor.updateConfig(config);
  parts.memoryGuard.updateConfig(config);
  parts.healthLoop.updateConfig(config);
  // What was applied: keys that wait for a restart have their own warning above.
  logger.emit({ kind: 'config-reloaded', path: next.path, ...configChanges(before, config) });
}

function workerSummary(supervisor: WorkerSupervisor): { state: string; pid: number | null; generation: number } {
  const w = supervisor.state;
  return { state: w.state, pid: w.pid, generation: w.generation };
}

/**
 * Memory, restart and log-level settings apply at once; worker settings at the next spawn.
 * Where the daemon listens (socket, metrics) and writes its PID cannot move while it runs: those
 * keep their value.
 */
function applyReload(current: Config, next: Config, logger: Logger): Config {
  logger.setLevel(next.log_level);
  const fixed: string[] = (['socket_path', 'pid_file'] as const).filter((k) => current[k] !== next[k]);
  if (current.metrics.listen !== next.metrics.listen) fixed.push('metrics.listen');
  for (const key of fixed) logger.line('warn', `reload: ${key} changed; it takes effect when the daemon restarts`);
  // The tree backend is chosen once, at start (tree-backend.ts).
  if (current.cgroup.mode !== next.cgroup.mode) logger.line('warn', 'reload: cgroup.mode changed; it takes effect when the daemon restarts');
  const cgroup = { ...next.cgroup, mode: current.cgroup.mode };
  return { ...next, socket_path: current.socket_path, pid_file: current.pid_file, logs: current.logs, cgroup, metrics: current.metrics };
}
