// Builds the `status` reply from the supervisor's model. Field names are a documented contract
// (README "Status fields"); all times ISO-8601 UTC, durations in ms, sizes in bytes, null if unknown.

import type { BackoffStatus, MemoryLimitsStatus, MemoryStatus, StatusData, TreeProcessStatus, TreeStatus, WorkerOutputLine } from '../control/protocol.js';
import type { Config } from '../config/types.js';
import type { WorkerModel } from '../policy/worker-state.js';
import { isoTime } from '../log/iso-time.js';

export interface StatusInputs {
  nowMs: number;
  daemon: { pid: number; version: string; startedAtMs: number; configPath: string | null; logTarget: string; native: { loaded: boolean; reason: string | null } };
  worker: Readonly<WorkerModel>;
  /**
   * The worker model's times are on the policy's monotonic clock: its reading now, for durations,
   * and the wall-clock times the supervisor noted at the run's spawn and last exit, for dates.
   */
  workerClock: { nowMs: number; startedAtWallMs: number | null; lastExitAtWallMs: number | null };
  command: string[];
  memory: MemoryStatus | null;
  /** The crash context of the last exit (supervisor.lastExitTail()); none when left out. */
  lastExitTail?: readonly WorkerOutputLine[];
  /** How the worker tree is found; the /proc rules when left out. */
  tree?: TreeStatus;
  /** The configuration in force: working_dir, restart policy, memory limits. */
  config: Pick<Config, 'working_dir' | 'worker' | 'restart' | 'memory'>;
  /** The supervisor's lastSpawnError (wall clock). */
  lastSpawnError: { atWallMs: number; message: string } | null;
  /** The tree's processes (memory guard's treeListing); none before the first sample. */
  treeListing: { processes: TreeProcessStatus[]; left_out: number } | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));

/** What the worker part of the status is built from. */
export type WorkerStatusInputs = Pick<StatusInputs, 'nowMs' | 'worker' | 'workerClock' | 'command' | 'lastExitTail' | 'config' | 'lastSpawnError'>;

export function buildStatus(s: StatusInputs): StatusData {
  return {
    daemon: {
      pid: s.daemon.pid,
      version: s.daemon.version,
      started_at: iso(s.daemon.startedAtMs)!,
      uptime_ms: s.nowMs - s.daemon.startedAtMs,
      config_path: s.daemon.configPath,
      log_target: s.daemon.logTarget,
      native: { ...s.daemon.native },
    },
    worker: buildWorkerStatus(s),
    restarts: { ...s.worker.restarts },
    memory: s.memory,
    tree: {
      ...(s.tree ?? { backend: 'proc', cgroup: null, leaf: null }),
      processes: s.treeListing?.processes ?? [],
      processes_left_out: s.treeListing?.left_out ?? 0,
    },
    memory_limits: memoryLimitsOf(s.config.memory),
  };
}

/** The status `worker` part alone (the notifier's payload): no memory look, no tree listing. */
export function buildWorkerStatus(s: WorkerStatusInputs): StatusData['worker'] {
  const w = s.worker;
  const clock = s.workerClock;
  const running = w.pid !== null && w.startedAtMs !== null;
  // A scheduled restart is a delay from now, so its date is now plus what is left of it.
  const nextRestartAtMs = w.nextStartAtMs === null ? null : s.nowMs + Math.max(0, w.nextStartAtMs - clock.nowMs);
  return {
    state: w.state,
    pid: w.pid,
    generation: w.generation,
    started_at: running ? iso(clock.startedAtWallMs) : null,
    uptime_ms: running ? Math.max(0, clock.nowMs - w.startedAtMs!) : null,
    command: s.command,
    consecutive_failures: w.consecutiveFailures,
    next_restart_at: iso(nextRestartAtMs),
    last_exit: w.lastExit === null ? null : {
      code: w.lastExit.code,
      signal: w.lastExit.signal,
      at: iso(clock.lastExitAtWallMs ?? s.nowMs)!,
      uptime_ms: w.lastExit.uptimeMs,
      asked: w.lastExit.asked,
      tail: (s.lastExitTail ?? []).map((l) => ({ ...l })),
    },
    working_dir: s.config.working_dir,
    stop_timeout_ms: s.config.worker.stop_timeout_ms,
    restart: s.config.worker.restart,
    backoff: backoffOf(s.config.restart),
    last_spawn_error: s.lastSpawnError === null ? null : { at: iso(s.lastSpawnError.atWallMs)!, message: s.lastSpawnError.message },
  };
}

function backoffOf(r: Config['restart']): BackoffStatus {
  return {
    initial_backoff_ms: r.initial_backoff_ms, max_backoff_ms: r.max_backoff_ms, backoff_multiplier: r.backoff_multiplier,
    max_consecutive_restarts: r.max_consecutive_restarts, stable_after_ms: r.stable_after_ms,
  };
}

function memoryLimitsOf(m: Config['memory']): MemoryLimitsStatus {
  return {
    worker_max_bytes: m.worker_max_bytes, min_available_bytes: m.min_available_bytes, critical_threshold_bytes: m.critical_threshold_bytes,
    node_kill_threshold_bytes: m.node_kill_threshold_bytes, psi_some_avg10: m.psi_some_avg10,
  };
}
