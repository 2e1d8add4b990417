// Health verdicts for one worker run (issue #17): is it alive by its output and CPU (stall), its
// heartbeat file, its probe, and has it run long enough to be recycled. Pure: every input carries
// its own time (`atMs` on the policy's monotonic clock, `wallMs` for comparing with a file's mtime);
// the daemon (src/daemon/health-loop.ts) samples, asks, and acts. Semantics: docs/supervision.md.

export type HealthSignal = 'stall' | 'heartbeat' | 'probe';

export interface HealthSettings {
  stall_timeout_ms: number | null;
  stall_cpu_ms: number;
  /** null when no heartbeat file is configured. */
  heartbeat_timeout_ms: number | null;
  /** null when no probe command is configured. */
  probe_failures: number | null;
  max_uptime_ms: number | null;
  start_grace_ms: number;
}

/** What the heartbeat file looked like at a sample. */
export type HeartbeatReading =
  | { kind: 'missing' }
  /** Its mtime, wall-clock ms. */
  | { kind: 'mtime'; mtimeMs: number }
  /** Could not be read (not a permission we have, an I/O error): no verdict. */
  | { kind: 'unknown' };

export interface HealthSample {
  atMs: number;
  wallMs: number;
  /** When the worker last wrote to stdout or stderr (policy clock), or null when it never did this run. */
  lastOutputAtMs: number | null;
  /** CPU time the tree used since the previous sample (since the spawn for the first), or null when not sampled. */
  treeCpuMs: number | null;
  /** How long the previous sample (or the spawn) lies back, to scale the CPU tolerance when a check comes late. */
  sinceLastSampleMs: number;
  heartbeat: HeartbeatReading | null;
}

export interface ProbeOutcome {
  /** When the probe was started: one started before the grace ended is not judged. */
  startedAtMs: number;
  atMs: number;
  ok: boolean;
  /** In words: `exit code 1`, `timed out after 5000 ms`, `spawn failed: ...`. */
  detail: string;
}

export interface HealthState {
  spawnedAtMs: number;
  /** The latest time the tree was seen alive by output or CPU (the spawn at first). */
  activeAtMs: number;
  /** This run's latest output seen (policy clock), or null. */
  lastOutputAtMs: number | null;
  /** CPU of the latest sample and whether it counted as activity, for the figures. */
  lastCpuMs: number | null;
  heartbeat: HeartbeatReading | null;
  /** The heartbeat's age at the latest sample, or null when it has no verdict (future or zero mtime, unknown). */
  heartbeatAgeMs: number | null;
  consecutiveProbeFailures: number;
  lastProbe: ProbeOutcome | null;
}

export type HealthFigures =
  | { signal: 'stall'; silentMs: number; stallTimeoutMs: number; lastCpuMs: number | null; stallCpuMs: number; lastOutputAgoMs: number | null }
  | { signal: 'heartbeat'; ageMs: number; timeoutMs: number; missing: boolean }
  | { signal: 'probe'; consecutiveFailures: number; probeFailures: number; lastDetail: string };

export type HealthVerdict =
  | { kind: 'healthy' }
  /** Within start_grace_ms of the spawn: nothing is judged (a recycle still is: it is no judgement). */
  | { kind: 'grace' }
  | { kind: 'unhealthy'; signal: HealthSignal; figures: HealthFigures }
  | { kind: 'recycle'; uptimeMs: number; maxUptimeMs: number };

/** The default check interval bounds: often enough for short test timeouts, rarely enough to cost nothing. */
export const MIN_CHECK_INTERVAL_MS = 100;
export const MAX_CHECK_INTERVAL_MS = 5000;
/** A timeout is checked about this many times over its length, so a verdict is at most a tenth late. */
const CHECKS_PER_TIMEOUT = 10;

/** True when any signal that needs periodic samples is on (the probe has its own schedule). */
export function needsSamples(s: HealthSettings): boolean {
  return s.stall_timeout_ms !== null || s.heartbeat_timeout_ms !== null || s.max_uptime_ms !== null;
}

/**
 * How often the tree and heartbeat are sampled: a tenth of the shortest timeout in use, within
 * [MIN_CHECK_INTERVAL_MS, MAX_CHECK_INTERVAL_MS]. stall_cpu_ms is a budget per this interval.
 */
export function checkIntervalMs(s: HealthSettings): number {
  const timeouts = [s.stall_timeout_ms, s.heartbeat_timeout_ms, s.max_uptime_ms].filter((t): t is number => t !== null);
  if (timeouts.length === 0) return MAX_CHECK_INTERVAL_MS;
  const wanted = Math.floor(Math.min(...timeouts) / CHECKS_PER_TIMEOUT);
  return Math.min(MAX_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, wanted));
}

export function initialHealthState(spawnedAtMs: number): HealthState {
  return {
    spawnedAtMs,
    activeAtMs: spawnedAtMs,
    lastOutputAtMs: null,
    lastCpuMs: null,
    heartbeat: null,
    heartbeatAgeMs: null,
    consecutiveProbeFailures: 0,
    lastProbe: null,
  };
}

/**
 * The heartbeat's age, counted from the spawn at the latest: a missing file, or one older than the
 * run (left by an earlier generation), is as old as the run. An mtime at or below zero, or in the
 * future, is no verdict (null): a supervisor that read a zero timestamp as decades old restarted
 * its agent every few minutes.
 */
export function heartbeatAgeMs(reading: HeartbeatReading, wallMs: number, runMs: number): number | null {
  if (reading.kind === 'unknown') return null;
  if (reading.kind === 'missing') return runMs;
  if (!(reading.mtimeMs > 0) || reading.mtimeMs > wallMs) return null;
  // mtimes have sub-millisecond parts; the figures are whole milliseconds.
  return Math.round(Math.min(wallMs - reading.mtimeMs, runMs));
}

/** Takes in one sample: output and CPU above the tolerance mark the tree active. */
export function observeSample(state: HealthState, sample: HealthSample, s: HealthSettings): HealthState {
  let activeAtMs = state.activeAtMs;
  // Output from before this run's spawn is an earlier generation's.
  const output = sample.lastOutputAtMs !== null && sample.lastOutputAtMs >= state.spawnedAtMs ? Math.min(sample.lastOutputAtMs, sample.atMs) : null;
  const lastOutputAtMs = output === null ? state.lastOutputAtMs : Math.max(output, state.lastOutputAtMs ?? output);
  if (lastOutputAtMs !== null) activeAtMs = Math.max(activeAtMs, lastOutputAtMs);
  if (sample.treeCpuMs !== null) {
    const interval = checkIntervalMs(s);
    // A check that comes late (a loaded machine) covers more time, and so allows more CPU.
    const toleranceMs = s.stall_cpu_ms * Math.max(1, sample.sinceLastSampleMs / interval);
    if (sample.treeCpuMs > toleranceMs) activeAtMs = Math.max(activeAtMs, sample.atMs);
  }
  const runMs = Math.max(0, sample.atMs - state.spawnedAtMs);
  return {
    ...state,
    activeAtMs,
    lastOutputAtMs,
    lastCpuMs: sample.treeCpuMs,
    heartbeat: sample.heartbeat,
    heartbeatAgeMs: sample.heartbeat === null ? null : heartbeatAgeMs(sample.heartbeat, sample.wallMs, runMs),
  };
}

/** Takes in one probe's outcome: failures (timeouts included) count up, a success clears the count. */
export function observeProbe(state: HealthState, outcome: ProbeOutcome, s: HealthSettings): HealthState {
  // A probe started within the grace is not judged: the worker may not listen yet.
  if (outcome.startedAtMs < state.spawnedAtMs + s.start_grace_ms) return { ...state, lastProbe: outcome };
  return {
    ...state,
    lastProbe: outcome,
    consecutiveProbeFailures: outcome.ok ? 0 : state.consecutiveProbeFailures + 1,
  };
}

/** The verdict at `atMs`. The signals are looked at in a fixed order: stall, heartbeat, probe, then the recycle. */
export function judgeHealth(state: HealthState, atMs: number, s: HealthSettings): HealthVerdict {
  const uptimeMs = Math.max(0, atMs - state.spawnedAtMs);
  if (uptimeMs < s.start_grace_ms) return recycleDue(uptimeMs, s) ?? { kind: 'grace' };
  if (s.stall_timeout_ms !== null) {
    const silentMs = Math.max(0, atMs - state.activeAtMs);
    if (silentMs >= s.stall_timeout_ms) {
      return {
        kind: 'unhealthy',
        signal: 'stall',
        figures: {
          signal: 'stall', silentMs, stallTimeoutMs: s.stall_timeout_ms, lastCpuMs: state.lastCpuMs, stallCpuMs: s.stall_cpu_ms,
          lastOutputAgoMs: state.lastOutputAtMs === null ? null : Math.max(0, atMs - state.lastOutputAtMs),
        },
      };
    }
  }
  if (s.heartbeat_timeout_ms !== null && state.heartbeatAgeMs !== null && state.heartbeatAgeMs >= s.heartbeat_timeout_ms) {
    return {
      kind: 'unhealthy',
      signal: 'heartbeat',
      figures: { signal: 'heartbeat', ageMs: state.heartbeatAgeMs, timeoutMs: s.heartbeat_timeout_ms, missing: state.heartbeat?.kind === 'missing' },
    };
  }
  if (s.probe_failures !== null && state.consecutiveProbeFailures >= s.probe_failures) {
    return {
      kind: 'unhealthy',
      signal: 'probe',
      figures: { signal: 'probe', consecutiveFailures: state.consecutiveProbeFailures, probeFailures: s.probe_failures, lastDetail: state.lastProbe?.detail ?? '' },
    };
  }
  return recycleDue(uptimeMs, s) ?? { kind: 'healthy' };
}

function recycleDue(uptimeMs: number, s: HealthSettings): HealthVerdict | null {
  if (s.max_uptime_ms === null || uptimeMs < s.max_uptime_ms) return null;
  return { kind: 'recycle', uptimeMs, maxUptimeMs: s.max_uptime_ms };
}

/** The figures in a few words, for the log line of a health restart. */
export function describeFigures(f: HealthFigures): string {
  switch (f.signal) {
    case 'stall':
      return `no output and at most ${f.stallCpuMs} ms CPU per check for ${f.silentMs} ms (stall_timeout_ms ${f.stallTimeoutMs}; last output ${f.lastOutputAgoMs === null ? 'never' : `${f.lastOutputAgoMs} ms ago`}; last check ${f.lastCpuMs === null ? 'not sampled' : `${Math.round(f.lastCpuMs)} ms CPU`})`;
    case 'heartbeat':
      return `heartbeat file ${f.missing ? 'missing' : 'not touched'} for ${f.ageMs} ms (heartbeat_timeout_ms ${f.timeoutMs})`;
    case 'probe':
      return `${f.consecutiveFailures} probes failed in a row (probe_failures ${f.probeFailures}; last: ${f.lastDetail})`;
  }
}
