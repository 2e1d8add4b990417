// Builds the `status` reply from the supervisor's model. Field names are a documented contract
// (README "Status fields"); all times ISO-8601 UTC, durations in ms, sizes in bytes, null if unknown.

import type { MemoryStatus, StatusData } from '../control/protocol.js';
import type { WorkerModel } from '../policy/worker-state.js';

export interface StatusInputs {
  nowMs: number;
  daemon: { pid: number; version: string; startedAtMs: number; configPath: string | null; logTarget: string };
  worker: Readonly<WorkerModel>;
  command: string[];
  memory: MemoryStatus | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function buildStatus(s: StatusInputs): StatusData {
  const w = s.worker;
  const running = w.pid !== null && w.startedAtMs !== null;
  return {
    daemon: {
      pid: s.daemon.pid,
      version: s.daemon.version,
      started_at: iso(s.daemon.startedAtMs)!,
      uptime_ms: s.nowMs - s.daemon.startedAtMs,
      config_path: s.daemon.configPath,
      log_target: s.daemon.logTarget,
    },
    worker: {
      state: w.state,
      pid: w.pid,
      generation: w.generation,
      started_at: running ? iso(w.startedAtMs) : null,
      uptime_ms: running ? s.nowMs - w.startedAtMs! : null,
      command: s.command,
      consecutive_failures: w.consecutiveFailures,
      next_restart_at: iso(w.nextStartAtMs),
      last_exit: w.lastExit === null ? null : {
        code: w.lastExit.code,
        signal: w.lastExit.signal,
        at: iso(w.lastExit.atMs)!,
        uptime_ms: w.lastExit.uptimeMs,
      },
    },
    restarts: { ...w.restarts },
    memory: s.memory,
  };
}
