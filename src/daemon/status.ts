// Builds the `status` reply from the supervisor's model. Field names are a documented contract
// (README "Status fields"); all times ISO-8601 UTC, durations in ms, sizes in bytes, null if unknown.

import type { MemoryStatus, StatusData, WorkerOutputLine } from '../control/protocol.js';
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
}

const iso = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));

export function buildStatus(s: StatusInputs): StatusData {
  const w = s.worker;
  const clock = s.workerClock;
  const running = w.pid !== null && w.startedAtMs !== null;
  // A scheduled restart is a delay from now, so its date is now plus what is left of it.
  const nextRestartAtMs = w.nextStartAtMs === null ? null : s.nowMs + Math.max(0, w.nextStartAtMs - clock.nowMs);
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
    worker: {
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
    },
    restarts: { ...w.restarts },
    memory: s.memory,
  };
}
