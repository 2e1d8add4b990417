// Health verdicts with an injected clock (issue #17): each signal, the grace, the recycle, and the
// heartbeat's edge cases (missing, older than the run, zero, in the future).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkIntervalMs, describeFigures, heartbeatAgeMs, initialHealthState, judgeHealth, needsSamples, observeProbe, observeSample,
  MAX_CHECK_INTERVAL_MS, MIN_CHECK_INTERVAL_MS,
  type HealthSample, type HealthSettings, type HealthState, type HeartbeatReading,
} from '../../src/policy/health.js';
import { cpuTicksBetween, readCpu, ticksToMs } from '../../src/policy/tree-cpu.js';

const OFF: HealthSettings = {
  stall_timeout_ms: null, stall_cpu_ms: 50, heartbeat_timeout_ms: null, probe_failures: null, max_uptime_ms: null, start_grace_ms: 60_000,
};
const SPAWN = 1_000_000;
/** Wall clock = policy clock + this, so the two are told apart. */
const WALL = 1_700_000_000_000;

function sample(atMs: number, over: Partial<HealthSample> = {}): HealthSample {
  return { atMs, wallMs: atMs + WALL, lastOutputAtMs: null, treeCpuMs: 0, sinceLastSampleMs: 1000, heartbeat: null, ...over };
}

/** Feeds samples (every `stepMs` from the spawn to `untilMs`), returning the state and the first non-healthy verdict. */
function runSamples(s: HealthSettings, untilMs: number, stepMs: number, at: (atMs: number) => Partial<HealthSample>) {
  let state: HealthState = initialHealthState(SPAWN);
  for (let t = SPAWN + stepMs; t <= SPAWN + untilMs; t += stepMs) {
    state = observeSample(state, sample(t, { sinceLastSampleMs: stepMs, ...at(t) }), s);
    const verdict = judgeHealth(state, t, s);
    if (verdict.kind !== 'healthy' && verdict.kind !== 'grace') return { state, verdict, atMs: t };
  }
  return { state, verdict: null, atMs: null };
}

test('with every signal off nothing is ever judged unhealthy and no sampling is needed', () => {
  assert.equal(needsSamples(OFF), false);
  const r = runSamples({ ...OFF, start_grace_ms: 0 }, 10_000_000, 100_000, () => ({ treeCpuMs: 0 }));
  assert.equal(r.verdict, null);
});

test('a silent, idle tree is unhealthy (stall) once stall_timeout_ms passed since the spawn', () => {
  const s = { ...OFF, stall_timeout_ms: 120_000, start_grace_ms: 0 };
  const r = runSamples(s, 600_000, 1000, () => ({ treeCpuMs: 10 }));
  assert.equal(r.atMs, SPAWN + 120_000);
  assert.equal(r.verdict?.kind, 'unhealthy');
  if (r.verdict?.kind !== 'unhealthy') return;
  assert.equal(r.verdict.signal, 'stall');
  assert.deepEqual(r.verdict.figures, { signal: 'stall', silentMs: 120_000, stallTimeoutMs: 120_000, lastCpuMs: 10, stallCpuMs: 50, lastOutputAgoMs: null });
  assert.match(describeFigures(r.verdict.figures), /no output and at most 50 ms CPU per check for 120000 ms .*last output never; last check 10 ms CPU/);
});

test('output keeps a stall away, however idle the CPU', () => {
  const s = { ...OFF, stall_timeout_ms: 120_000, start_grace_ms: 0 };
  // A line every 100 s, never a tick of CPU.
  const r = runSamples(s, 1_000_000, 1000, (t) => ({ lastOutputAtMs: SPAWN + Math.floor((t - SPAWN) / 100_000) * 100_000 || null, treeCpuMs: 0 }));
  assert.equal(r.verdict, null);
});

test('the stall counts from the last output: silence after it is judged stall_timeout_ms later', () => {
  const s = { ...OFF, stall_timeout_ms: 60_000, start_grace_ms: 0 };
  const lastOutput = SPAWN + 30_000;
  const r = runSamples(s, 600_000, 1000, (t) => ({ lastOutputAtMs: t >= lastOutput ? lastOutput : null }));
  assert.equal(r.atMs, lastOutput + 60_000);
  if (r.verdict?.kind !== 'unhealthy' || r.verdict.figures.signal !== 'stall') return assert.fail('expected a stall');
  assert.equal(r.verdict.figures.lastOutputAgoMs, 60_000);
});

test('CPU above stall_cpu_ms per check keeps a stall away; at or below it does not', () => {
  const s = { ...OFF, stall_timeout_ms: 60_000, start_grace_ms: 0 };
  const interval = checkIntervalMs(s);
  assert.equal(runSamples(s, 600_000, interval, () => ({ treeCpuMs: 51 })).verdict, null);
  assert.equal(runSamples(s, 600_000, interval, () => ({ treeCpuMs: 50 })).atMs, SPAWN + 60_000);
  // Busy only at the start: judged a timeout after the last busy check.
  const r = runSamples(s, 600_000, interval, (t) => ({ treeCpuMs: t <= SPAWN + 10_000 ? 400 : 0 }));
  assert.equal(r.atMs, SPAWN + 10_000 + 60_000);
});

test('a check that comes late allows CPU in proportion to the time it covers', () => {
  const s = { ...OFF, stall_timeout_ms: 60_000, start_grace_ms: 0 };
  const interval = checkIntervalMs(s);
  let state = initialHealthState(SPAWN);
  // Three intervals in one late check: 120 ms is 40 per interval, idle.
  state = observeSample(state, sample(SPAWN + 3 * interval, { sinceLastSampleMs: 3 * interval, treeCpuMs: 120 }), s);
  assert.equal(state.activeAtMs, SPAWN);
  state = observeSample(state, sample(SPAWN + 4 * interval, { sinceLastSampleMs: interval, treeCpuMs: 120 }), s);
  assert.equal(state.activeAtMs, SPAWN + 4 * interval);
});

test('stall_cpu_ms = 0 counts any CPU at all as a sign of life', () => {
  const s = { ...OFF, stall_timeout_ms: 60_000, stall_cpu_ms: 0, start_grace_ms: 0 };
  assert.equal(runSamples(s, 600_000, 1000, () => ({ treeCpuMs: 10 })).verdict, null);
  assert.equal(runSamples(s, 600_000, 1000, () => ({ treeCpuMs: 0 })).atMs, SPAWN + 60_000);
});

test('output of an earlier generation (before the spawn) does not count for this run', () => {
  const s = { ...OFF, stall_timeout_ms: 60_000, start_grace_ms: 0 };
  const r = runSamples(s, 600_000, 1000, () => ({ lastOutputAtMs: SPAWN - 1 }));
  assert.equal(r.atMs, SPAWN + 60_000);
});

test('nothing is judged within start_grace_ms of the spawn; at its end the signals count from the spawn', () => {
  const s = { ...OFF, stall_timeout_ms: 10_000, start_grace_ms: 60_000 };
  let state = initialHealthState(SPAWN);
  state = observeSample(state, sample(SPAWN + 59_999), s);
  assert.deepEqual(judgeHealth(state, SPAWN + 59_999, s), { kind: 'grace' });
  state = observeSample(state, sample(SPAWN + 60_000), s);
  const v = judgeHealth(state, SPAWN + 60_000, s);
  assert.equal(v.kind === 'unhealthy' && v.signal, 'stall');
});

test('a heartbeat file that does not exist yet counts from the spawn', () => {
  const s = { ...OFF, heartbeat_timeout_ms: 30_000, start_grace_ms: 0 };
  const r = runSamples(s, 600_000, 1000, () => ({ heartbeat: { kind: 'missing' } }));
  assert.equal(r.atMs, SPAWN + 30_000);
  if (r.verdict?.kind !== 'unhealthy') return assert.fail('expected unhealthy');
  assert.deepEqual(r.verdict.figures, { signal: 'heartbeat', ageMs: 30_000, timeoutMs: 30_000, missing: true });
  assert.match(describeFigures(r.verdict.figures), /heartbeat file missing for 30000 ms/);
});

test('a heartbeat touched in time is healthy; one that stops being touched is judged heartbeat_timeout_ms after its last touch', () => {
  const s = { ...OFF, heartbeat_timeout_ms: 30_000, start_grace_ms: 0 };
  const touchedUntil = SPAWN + 100_000;
  // Touched every 10 s until touchedUntil.
  const r = runSamples(s, 600_000, 1000, (t) => {
    const last = Math.min(t, touchedUntil) - ((Math.min(t, touchedUntil) - SPAWN) % 10_000);
    return { heartbeat: { kind: 'mtime', mtimeMs: last + WALL } };
  });
  assert.equal(r.atMs, touchedUntil + 30_000);
  assert.equal(r.verdict?.kind === 'unhealthy' && r.verdict.figures.signal === 'heartbeat' && r.verdict.figures.missing, false);
});

test('a heartbeat older than the run (an earlier generation left it) counts from the spawn', () => {
  const old: HeartbeatReading = { kind: 'mtime', mtimeMs: SPAWN + WALL - 3_600_000 };
  assert.equal(heartbeatAgeMs(old, SPAWN + WALL + 5000, 5000), 5000);
  const s = { ...OFF, heartbeat_timeout_ms: 30_000, start_grace_ms: 0 };
  assert.equal(runSamples(s, 600_000, 1000, () => ({ heartbeat: old })).atMs, SPAWN + 30_000);
});

test('a heartbeat mtime of zero, below zero or in the future is no verdict: never a restart', () => {
  const s = { ...OFF, heartbeat_timeout_ms: 30_000, start_grace_ms: 0 };
  for (const mtimeMs of [0, -1000, Number.NaN]) {
    assert.equal(heartbeatAgeMs({ kind: 'mtime', mtimeMs }, WALL + 10_000_000, 10_000_000), null, `mtime ${mtimeMs}`);
    assert.equal(runSamples(s, 10_000_000, 10_000, () => ({ heartbeat: { kind: 'mtime', mtimeMs } })).verdict, null, `mtime ${mtimeMs}`);
  }
  // An hour ahead of the wall clock (a clock stepped back, a file from another machine).
  const r = runSamples(s, 10_000_000, 10_000, (t) => ({ heartbeat: { kind: 'mtime', mtimeMs: t + WALL + 3_600_000 } }));
  assert.equal(r.verdict, null);
  assert.equal(r.state.heartbeatAgeMs, null);
  // An unreadable file (permission, I/O error) is no verdict either.
  assert.equal(runSamples(s, 10_000_000, 10_000, () => ({ heartbeat: { kind: 'unknown' } })).verdict, null);
});

test('probe_failures consecutive failures are unhealthy; a success in between clears the count', () => {
  const s = { ...OFF, probe_failures: 3, start_grace_ms: 0 };
  let state = initialHealthState(SPAWN);
  const probe = (atMs: number, ok: boolean, detail = ok ? 'exit code 0' : 'exit code 1') => ({ startedAtMs: atMs - 10, atMs, ok, detail });
  state = observeProbe(state, probe(SPAWN + 1000, false), s);
  state = observeProbe(state, probe(SPAWN + 2000, false), s);
  assert.equal(judgeHealth(state, SPAWN + 2000, s).kind, 'healthy');
  state = observeProbe(state, probe(SPAWN + 3000, true), s);
  assert.equal(state.consecutiveProbeFailures, 0);
  state = observeProbe(state, probe(SPAWN + 4000, false), s);
  state = observeProbe(state, probe(SPAWN + 5000, false, 'timed out after 5000 ms'), s);
  assert.equal(judgeHealth(state, SPAWN + 5000, s).kind, 'healthy');
  state = observeProbe(state, probe(SPAWN + 6000, false, 'timed out after 5000 ms'), s);
  const v = judgeHealth(state, SPAWN + 6000, s);
  if (v.kind !== 'unhealthy') return assert.fail(`expected unhealthy, got ${v.kind}`);
  assert.deepEqual(v.figures, { signal: 'probe', consecutiveFailures: 3, probeFailures: 3, lastDetail: 'timed out after 5000 ms' });
  assert.match(describeFigures(v.figures), /3 probes failed in a row \(probe_failures 3; last: timed out after 5000 ms\)/);
});

test('a probe started within the grace is not counted, even if it ends after it', () => {
  const s = { ...OFF, probe_failures: 1, start_grace_ms: 10_000 };
  let state = initialHealthState(SPAWN);
  state = observeProbe(state, { startedAtMs: SPAWN + 9_000, atMs: SPAWN + 12_000, ok: false, detail: 'exit code 7' }, s);
  assert.equal(state.consecutiveProbeFailures, 0);
  assert.equal(judgeHealth(state, SPAWN + 12_000, s).kind, 'healthy');
  state = observeProbe(state, { startedAtMs: SPAWN + 10_000, atMs: SPAWN + 13_000, ok: false, detail: 'exit code 7' }, s);
  assert.equal(judgeHealth(state, SPAWN + 13_000, s).kind, 'unhealthy');
});

test('max_uptime_ms recycles a healthy worker, within the grace too (a recycle is no judgement)', () => {
  const s = { ...OFF, max_uptime_ms: 3_600_000, start_grace_ms: 0 };
  const state = initialHealthState(SPAWN);
  assert.equal(judgeHealth(state, SPAWN + 3_599_999, s).kind, 'healthy');
  assert.deepEqual(judgeHealth(state, SPAWN + 3_600_000, s), { kind: 'recycle', uptimeMs: 3_600_000, maxUptimeMs: 3_600_000 });
  const withGrace = { ...s, max_uptime_ms: 1000, start_grace_ms: 60_000 };
  assert.deepEqual(judgeHealth(state, SPAWN + 1000, withGrace), { kind: 'recycle', uptimeMs: 1000, maxUptimeMs: 1000 });
});

test('an unhealthy signal wins over a due recycle, and the signals are looked at as stall, heartbeat, probe', () => {
  const s: HealthSettings = { stall_timeout_ms: 1000, stall_cpu_ms: 50, heartbeat_timeout_ms: 1000, probe_failures: 1, max_uptime_ms: 1000, start_grace_ms: 0 };
  let state = observeSample(initialHealthState(SPAWN), sample(SPAWN + 2000, { heartbeat: { kind: 'missing' } }), s);
  state = observeProbe(state, { startedAtMs: SPAWN + 1, atMs: SPAWN + 2, ok: false, detail: 'exit code 1' }, s);
  const signalAt = (st: HealthState) => {
    const v = judgeHealth(st, SPAWN + 2000, s);
    return v.kind === 'unhealthy' ? v.signal : v.kind;
  };
  assert.equal(signalAt(state), 'stall');
  assert.equal(signalAt({ ...state, activeAtMs: SPAWN + 2000 }), 'heartbeat');
  assert.equal(signalAt({ ...state, activeAtMs: SPAWN + 2000, heartbeatAgeMs: 0 }), 'probe');
  assert.equal(signalAt({ ...state, activeAtMs: SPAWN + 2000, heartbeatAgeMs: 0, consecutiveProbeFailures: 0 }), 'recycle');
});

test('the check interval is a tenth of the shortest timeout, between 100 ms and 5 s', () => {
  assert.equal(checkIntervalMs(OFF), MAX_CHECK_INTERVAL_MS);
  assert.equal(checkIntervalMs({ ...OFF, stall_timeout_ms: 600_000 }), 5000);
  assert.equal(checkIntervalMs({ ...OFF, stall_timeout_ms: 600_000, heartbeat_timeout_ms: 20_000 }), 2000);
  assert.equal(checkIntervalMs({ ...OFF, max_uptime_ms: 500 }), MIN_CHECK_INTERVAL_MS);
  assert.equal(needsSamples({ ...OFF, max_uptime_ms: 500 }), true);
  assert.equal(needsSamples({ ...OFF, probe_failures: 3 }), false);
});

test('tree CPU: each process is compared with itself, so an exit does not make the tree look idle or negative', () => {
  const p = (pid: number, cpuTicks: number, childCpuTicks = 0, startTimeTicks = 500) => ({ pid, startTimeTicks, cpuTicks, childCpuTicks });
  const first = readCpu([p(10, 100), p(11, 50)]);
  assert.equal(cpuTicksBetween(null, first), 150, 'everything since the spawn counts at the first sample');
  // 11 exited (reaped by 10, whose child counters grew by its total); 12 is new.
  const second = readCpu([p(10, 103, 55), p(12, 4)]);
  assert.equal(cpuTicksBetween(first, second), 3 + 55 + 4);
  // A pid reused by another process (new start time) is a new process.
  const third = readCpu([p(10, 103, 55), p(12, 2, 0, 900)]);
  assert.equal(cpuTicksBetween(second, third), 2);
  // A misread smaller counter is never negative use.
  assert.equal(cpuTicksBetween(second, readCpu([p(10, 90, 55)])), 0);
  assert.equal(ticksToMs(7, 100), 70);
  assert.equal(ticksToMs(1, 250), 4);
});

test('a heartbeat age is whole milliseconds, whatever fraction the mtime has', () => {
  assert.equal(heartbeatAgeMs({ kind: 'mtime', mtimeMs: WALL + 1000.64 }, WALL + 2529, 10_000), 1528);
});
