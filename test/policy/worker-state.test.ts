import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  initialWorkerModel, stepWorker, TRANSITIONS, WORKER_EVENT_KINDS, WORKER_STATES,
  type WorkerEvent, type WorkerEventKind, type WorkerModel, type WorkerPolicySettings, type WorkerState, type WorkerEffect,
} from '../../src/policy/worker-state.js';
import type { HoldRequest } from '../../src/policy/hold-until.js';

const settings: WorkerPolicySettings = {
  initial_backoff_ms: 1000,
  max_backoff_ms: 300_000,
  backoff_multiplier: 2,
  max_consecutive_restarts: 10,
  stable_after_ms: 60_000,
  restart: 'always',
  prevent_exit_codes: [],
  hold_exit_codes: [],
  hold_ms: 1_800_000,
  hold_max_ms: 21_600_000,
};

/** Settings with a prevent code (3) and a hold code (75). */
const holding: WorkerPolicySettings = { ...settings, prevent_exit_codes: [3], hold_exit_codes: [75] };

/** Folds events into the model, collecting effects; `s` overrides settings. */
function run(events: WorkerEvent[], s: WorkerPolicySettings = settings, from = initialWorkerModel()) {
  let model = from;
  const effects: WorkerEffect[] = [];
  for (const e of events) {
    const step = stepWorker(model, e, s);
    model = step.model;
    effects.push(...step.effects);
  }
  return { model, effects };
}

const sampleEvent = (kind: WorkerEventKind, atMs = 1000): WorkerEvent => {
  switch (kind) {
    case 'spawned': return { kind, atMs, pid: 4242 };
    case 'spawn-failed': return { kind, atMs, reason: 'ENOENT' };
    case 'exited': return { kind, atMs, code: 1, signal: null };
    case 'restart-requested': return { kind, atMs, cause: 'operator' };
    default: return { kind, atMs } as WorkerEvent;
  }
};

/** A representative model in each state, reached through real transitions. */
function modelIn(state: WorkerState): WorkerModel {
  const started = run([{ kind: 'start-requested', atMs: 0 }]).model;
  const running = run([{ kind: 'spawned', atMs: 0, pid: 100 }], settings, started).model;
  switch (state) {
    case 'stopped': return initialWorkerModel();
    case 'starting': return started;
    case 'running': return running;
    case 'stopping': return run([{ kind: 'stop-requested', atMs: 10 }], settings, running).model;
    case 'backoff': return run([{ kind: 'exited', atMs: 10, code: 1, signal: null }, { kind: 'tree-gone', atMs: 20 }], settings, running).model;
    case 'failed': return { ...modelIn('backoff'), state: 'failed', consecutiveFailures: 10 };
    case 'held': return run([{ kind: 'exited', atMs: 10, code: 75, signal: null }, { kind: 'tree-gone', atMs: 20 }], holding, running).model;
  }
}

test('every state has a representative model in that state', () => {
  for (const state of WORKER_STATES) assert.equal(modelIn(state).state, state);
});

test('every impossible cell reports "unexpected" and changes nothing', () => {
  for (const state of WORKER_STATES) {
    for (const kind of WORKER_EVENT_KINDS) {
      if (TRANSITIONS[state][kind] !== 'impossible') continue;
      const before = modelIn(state);
      const step = stepWorker(before, sampleEvent(kind), settings);
      assert.deepEqual(step.model, before, `${state} × ${kind}`);
      assert.deepEqual(step.effects, [{ kind: 'unexpected', state, event: kind }], `${state} × ${kind}`);
    }
  }
});

test('every ignored cell leaves the model as it was and asks for nothing', () => {
  for (const state of WORKER_STATES) {
    for (const kind of WORKER_EVENT_KINDS) {
      if (TRANSITIONS[state][kind] !== 'ignore') continue;
      const before = modelIn(state);
      const step = stepWorker(before, sampleEvent(kind), settings);
      assert.deepEqual(step, { model: before, effects: [] }, `${state} × ${kind}`);
    }
  }
});

// The next state of each handled cell for the representative model; docs/supervision.md shows the same table.
const expectedNext: Record<WorkerState, Partial<Record<WorkerEventKind, WorkerState>>> = {
  stopped: { 'start-requested': 'starting', 'restart-requested': 'starting' },
  starting: { spawned: 'running', 'spawn-failed': 'backoff', exited: 'stopping', 'stop-requested': 'starting' },
  running: { exited: 'stopping', 'stable-elapsed': 'running', 'stop-requested': 'stopping', 'restart-requested': 'stopping' },
  stopping: { 'start-requested': 'stopping', exited: 'stopping', 'stop-requested': 'stopping', 'restart-requested': 'stopping', 'tree-gone': 'stopped' },
  backoff: { 'start-requested': 'starting', 'backoff-elapsed': 'starting', 'stop-requested': 'stopped', 'restart-requested': 'starting' },
  failed: { 'start-requested': 'starting', 'backoff-elapsed': 'starting', 'stop-requested': 'stopped', 'restart-requested': 'starting' },
  held: { 'start-requested': 'starting', 'backoff-elapsed': 'starting', 'stop-requested': 'stopped', 'restart-requested': 'starting' },
};

test('every handled cell moves the representative model to the expected state', () => {
  for (const state of WORKER_STATES) {
    for (const kind of WORKER_EVENT_KINDS) {
      const cell = TRANSITIONS[state][kind];
      if (typeof cell !== 'function') {
        assert.equal(expectedNext[state][kind], undefined, `${state} × ${kind} is ${cell} but a next state is expected`);
        continue;
      }
      const next = stepWorker(modelIn(state), sampleEvent(kind), settings).model.state;
      assert.equal(next, expectedNext[state][kind], `${state} × ${kind}`);
    }
  }
});

test('docs/supervision.md shows the same transition table as the code', () => {
  const doc = readFileSync(new URL('../../../docs/supervision.md', import.meta.url), 'utf8');
  const section = doc.split('<!-- transition-table -->')[1] ?? '';
  assert.ok(section, 'docs/supervision.md has a <!-- transition-table --> marker');
  // The table is the run of `|` lines right after the marker.
  const table = section.trimStart().split('\n');
  const tableLines = table.slice(0, table.findIndex((l) => !l.startsWith('|')));
  const rows = tableLines.filter((l) => l.startsWith('| `'));
  const header = tableLines.find((l) => l.startsWith('| state'))!;
  const kinds = header.split('|').slice(2, -1).map((c) => c.trim().replace(/`/g, ''));
  assert.deepEqual(kinds, [...WORKER_EVENT_KINDS]);
  assert.equal(rows.length, WORKER_STATES.length);
  for (const row of rows) {
    const cells = row.split('|').slice(1, -1).map((c) => c.trim());
    const state = cells[0]!.replace(/`/g, '') as WorkerState;
    kinds.forEach((kind, i) => {
      const cell = TRANSITIONS[state][kind as WorkerEventKind];
      const shown = cells[i + 1]!;
      const want = cell === 'impossible' ? '–' : cell === 'ignore' ? '·' : expectedNext[state][kind as WorkerEventKind]!;
      assert.ok(shown === want || shown.startsWith(`${want} `) || shown.startsWith(`${want}<`), `${state} × ${kind}: doc says "${shown}", code gives "${want}"`);
    });
  }
});

test('a crash loop follows 1, 2, 4 s ... and turns failed after 10 failures, still retrying at the cap', () => {
  let m = run([{ kind: 'start-requested', atMs: 0 }]).model;
  let now = 0;
  const delays: number[] = [];
  const states: WorkerState[] = [];
  for (let i = 0; i < 12; i++) {
    const step = run([
      { kind: 'spawned', atMs: now, pid: 100 + i },
      { kind: 'exited', atMs: now + 50, code: 1, signal: null },
      { kind: 'tree-gone', atMs: now + 60 },
    ], settings, m);
    const scheduled = step.effects.find((e) => e.kind === 'restart-scheduled');
    if (scheduled?.kind !== 'restart-scheduled') throw new Error('no restart was scheduled');
    delays.push(scheduled.delayMs);
    states.push(step.model.state);
    assert.equal(step.model.nextStartAtMs, now + 60 + scheduled.delayMs);
    now += 60 + scheduled.delayMs;
    m = run([{ kind: 'backoff-elapsed', atMs: now }], settings, step.model).model;
    assert.equal(m.state, 'starting', 'a failed worker is still started again');
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000, 300000]);
  assert.deepEqual(states, [...Array(9).fill('backoff'), 'failed', 'failed', 'failed']);
  assert.equal(m.restarts.crash, 12);
  assert.equal(m.restarts.total, 12);
  assert.equal(m.generation, 13);
});

test('failed retries at max_backoff_ms even when the schedule has not reached the cap', () => {
  const s = { ...settings, max_consecutive_restarts: 2, initial_backoff_ms: 50, max_backoff_ms: 5000 };
  const failOnce = [
    { kind: 'spawned', atMs: 0, pid: 1 }, { kind: 'exited', atMs: 1, code: 1, signal: null }, { kind: 'tree-gone', atMs: 2 },
  ] as WorkerEvent[];
  let r = run([{ kind: 'start-requested', atMs: 0 }, ...failOnce], s);
  assert.equal(r.model.state, 'backoff');
  r = run([{ kind: 'backoff-elapsed', atMs: 60 }, ...failOnce], s, r.model);
  assert.equal(r.model.state, 'failed');
  assert.deepEqual(r.effects.filter((e) => e.kind === 'restart-scheduled'),
    [{ kind: 'restart-scheduled', cause: 'crash', delayMs: 5000, consecutiveFailures: 2, failed: true }]);
});

test('a stable run clears failed, and its exit restarts after the initial delay', () => {
  let m: WorkerModel = { ...modelIn('failed') };
  m = run([{ kind: 'backoff-elapsed', atMs: 0 }, { kind: 'spawned', atMs: 0, pid: 7 }], settings, m).model;
  assert.equal(m.consecutiveFailures, 10);
  const cleared = stepWorker(m, { kind: 'stable-elapsed', atMs: 60_000 }, settings);
  assert.equal(cleared.model.consecutiveFailures, 0);
  assert.deepEqual(cleared.effects, [{ kind: 'failures-cleared', previousFailures: 10 }]);
  const after = run([{ kind: 'exited', atMs: 70_000, code: 1, signal: null }, { kind: 'tree-gone', atMs: 70_001 }], settings, cleared.model);
  assert.equal(after.model.state, 'backoff');
  assert.equal(after.model.consecutiveFailures, 1);
  assert.equal(after.model.nextStartAtMs, 71_001);
});

test('an exit after a long run resets the count even if the stable timer never fired', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 6, startedAtMs: 0 };
  const r = run([{ kind: 'exited', atMs: 60_000, code: null, signal: 'SIGSEGV' }, { kind: 'tree-gone', atMs: 60_000 }], settings, m);
  assert.equal(r.model.consecutiveFailures, 1);
  assert.deepEqual(r.model.lastExit, { code: null, signal: 'SIGSEGV', atMs: 60_000, uptimeMs: 60_000, asked: null });
});

test('an exit just short of stable still counts on top of earlier failures', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 3, startedAtMs: 0 };
  const r = run([{ kind: 'exited', atMs: 59_999, code: 2, signal: null }, { kind: 'tree-gone', atMs: 59_999 }], settings, m);
  assert.equal(r.model.consecutiveFailures, 4);
  assert.equal(r.model.nextStartAtMs, 59_999 + 8000);
});

test('with restart = "always" an exit 0 restarts; with "on-failure" it stops', () => {
  const exit0 = [{ kind: 'exited', atMs: 5, code: 0, signal: null }, { kind: 'tree-gone', atMs: 6 }] as WorkerEvent[];
  assert.equal(run(exit0, settings, modelIn('running')).model.state, 'backoff');
  const onFailure = { ...settings, restart: 'on-failure' as const };
  const stopped = run(exit0, onFailure, modelIn('running'));
  assert.equal(stopped.model.state, 'stopped');
  assert.equal(stopped.model.wanted, 'down');
  assert.equal(stopped.model.restarts.total, 0);
  const exit1 = [{ kind: 'exited', atMs: 5, code: 1, signal: null }, { kind: 'tree-gone', atMs: 6 }] as WorkerEvent[];
  assert.equal(run(exit1, onFailure, modelIn('running')).model.state, 'backoff');
});

test('the tree is cleared after the main process exits, before any restart', () => {
  const r = stepWorker(modelIn('running'), { kind: 'exited', atMs: 5, code: 1, signal: null }, settings);
  assert.equal(r.model.state, 'stopping');
  assert.deepEqual(r.effects, [{ kind: 'cancel-timer', timer: 'stable' }, { kind: 'stop-tree' }]);
});

test('a spawn failure counts as a failure and goes through the same backoff', () => {
  const r = run([{ kind: 'start-requested', atMs: 0 }, { kind: 'spawn-failed', atMs: 0, reason: 'ENOENT' }]);
  assert.equal(r.model.state, 'backoff');
  assert.equal(r.model.consecutiveFailures, 1);
  assert.equal(r.model.restarts.crash, 1);
  assert.deepEqual(r.effects.at(-1), { kind: 'arm-timer', timer: 'backoff', delayMs: 1000 });
});

test('an operator restart stops the tree, then starts at once and forgives past failures', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 5 };
  const stop = stepWorker(m, { kind: 'restart-requested', atMs: 10, cause: 'operator' }, settings);
  assert.equal(stop.model.state, 'stopping');
  assert.ok(stop.effects.some((e) => e.kind === 'stop-tree'));
  const r = run([{ kind: 'exited', atMs: 11, code: null, signal: 'SIGTERM' }, { kind: 'tree-gone', atMs: 12 }], settings, stop.model);
  assert.equal(r.model.state, 'starting');
  assert.equal(r.model.consecutiveFailures, 0);
  assert.equal(r.model.restarts.operator, 1);
  assert.deepEqual(r.effects, [{ kind: 'spawn', generation: m.generation + 1 }]);
});

test('a memory restart spends the failure budget and waits out the backoff', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 2, startedAtMs: 0 };
  const r = run([
    { kind: 'restart-requested', atMs: 100, cause: 'memory' },
    { kind: 'exited', atMs: 110, code: null, signal: 'SIGTERM' },
    { kind: 'tree-gone', atMs: 120 },
  ], settings, m);
  assert.equal(r.model.state, 'backoff');
  assert.equal(r.model.consecutiveFailures, 3);
  assert.equal(r.model.restarts.memory, 1);
  assert.deepEqual(r.effects.filter((e) => e.kind === 'restart-scheduled'),
    [{ kind: 'restart-scheduled', cause: 'memory', delayMs: 4000, consecutiveFailures: 3, failed: false }]);
});

test('a health restart after a stable run restarts after the initial delay', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 4, startedAtMs: 0 };
  const r = run([{ kind: 'restart-requested', atMs: 90_000, cause: 'health' }, { kind: 'tree-gone', atMs: 90_001 }], settings, m);
  assert.equal(r.model.consecutiveFailures, 1);
  assert.equal(r.model.restarts.health, 1);
  assert.equal(r.model.nextStartAtMs, 91_001);
});

test('memory and health restarts are ignored when no worker runs', () => {
  for (const state of ['stopped', 'backoff', 'failed'] as const) {
    for (const cause of ['memory', 'health'] as const) {
      const before = modelIn(state);
      assert.deepEqual(stepWorker(before, { kind: 'restart-requested', atMs: 1, cause }, settings), { model: before, effects: [] });
    }
  }
});

test('stop during backoff cancels the timer and stays stopped', () => {
  const r = stepWorker(modelIn('backoff'), { kind: 'stop-requested', atMs: 30 }, settings);
  assert.equal(r.model.state, 'stopped');
  assert.equal(r.model.nextStartAtMs, null);
  assert.deepEqual(r.effects, [{ kind: 'cancel-timer', timer: 'backoff' }]);
});

test('restart-worker during backoff starts at once and counts as an operator restart', () => {
  const before = { ...modelIn('backoff'), consecutiveFailures: 3 };
  const r = stepWorker(before, { kind: 'restart-requested', atMs: 30, cause: 'operator' }, settings);
  assert.equal(r.model.state, 'starting');
  assert.equal(r.model.consecutiveFailures, 0);
  assert.equal(r.model.restarts.operator, before.restarts.operator + 1);
  assert.deepEqual(r.effects.map((e) => e.kind), ['cancel-timer', 'spawn']);
});

test('start during backoff starts at once and resets the count', () => {
  const r = stepWorker({ ...modelIn('backoff'), consecutiveFailures: 3 }, { kind: 'start-requested', atMs: 30 }, settings);
  assert.equal(r.model.state, 'starting');
  assert.equal(r.model.consecutiveFailures, 0);
  assert.deepEqual(r.effects.map((e) => e.kind), ['cancel-timer', 'spawn']);
});

test('a stop asked while the spawn is in flight stops the worker once it is up', () => {
  const asked = stepWorker(modelIn('starting'), { kind: 'stop-requested', atMs: 1 }, settings).model;
  assert.equal(asked.wanted, 'down');
  const up = stepWorker(asked, { kind: 'spawned', atMs: 2, pid: 9 }, settings);
  assert.equal(up.model.state, 'stopping');
  assert.ok(up.effects.some((e) => e.kind === 'stop-tree'));
  const failed = stepWorker(asked, { kind: 'spawn-failed', atMs: 2, reason: 'x' }, settings);
  assert.equal(failed.model.state, 'stopped');
  assert.deepEqual(failed.effects, []);
});

test('a stop during a restart cancels the restart; a restart during a stop revives it', () => {
  const restarting = stepWorker(modelIn('running'), { kind: 'restart-requested', atMs: 1, cause: 'memory' }, settings).model;
  const stopped = run([{ kind: 'stop-requested', atMs: 2 }, { kind: 'tree-gone', atMs: 3 }], settings, restarting).model;
  assert.equal(stopped.state, 'stopped');
  const revived = run([{ kind: 'restart-requested', atMs: 2, cause: 'operator' }, { kind: 'tree-gone', atMs: 3 }], settings, modelIn('stopping'));
  assert.equal(revived.model.state, 'starting');
  const started = run([{ kind: 'start-requested', atMs: 2 }, { kind: 'tree-gone', atMs: 3 }], settings, modelIn('stopping'));
  assert.equal(started.model.state, 'starting');
});

test('the exit seen while stopping is recorded but not counted as a failure', () => {
  const m = { ...modelIn('stopping'), consecutiveFailures: 2 };
  const r = stepWorker(m, { kind: 'exited', atMs: 50, code: null, signal: 'SIGTERM' }, settings);
  assert.equal(r.model.consecutiveFailures, 2);
  assert.equal(r.model.lastExit?.signal, 'SIGTERM');
  assert.equal(r.model.pid, null);
});

test('a worker that exits before its spawn was reported is cleared like any exit, and a stop asked meanwhile is honoured (#15)', () => {
  // The daemon failed while handling the spawn, then asked for a stop: the exit must end in stopped.
  const asked = run([{ kind: 'start-requested', atMs: 0 }, { kind: 'stop-requested', atMs: 5 }]).model;
  const exited = stepWorker(asked, { kind: 'exited', atMs: 900, code: null, signal: 'SIGTERM' }, settings);
  assert.equal(exited.model.state, 'stopping');
  assert.deepEqual(exited.effects, [{ kind: 'cancel-timer', timer: 'stable' }, { kind: 'stop-tree' }]);
  assert.deepEqual(exited.model.lastExit, { code: null, signal: 'SIGTERM', atMs: 900, uptimeMs: 0, asked: null });
  assert.equal(run([{ kind: 'tree-gone', atMs: 950 }], settings, exited.model).model.state, 'stopped');
  // Wanted up, it is a crash and restarts after a backoff.
  const crashed = run([{ kind: 'start-requested', atMs: 0 }, { kind: 'exited', atMs: 900, code: 1, signal: null }, { kind: 'tree-gone', atMs: 950 }]);
  assert.equal(crashed.model.state, 'backoff');
  assert.equal(crashed.model.consecutiveFailures, 1);
});

test('an exit before the spawn was reported never takes the previous run\'s start for its uptime (#15)', () => {
  const first = run([{ kind: 'start-requested', atMs: 0 }, { kind: 'spawned', atMs: 0, pid: 100 }, { kind: 'restart-requested', atMs: 2000, cause: 'operator' }, { kind: 'tree-gone', atMs: 2100 }]).model;
  assert.equal(first.state, 'starting');
  const exited = stepWorker(first, { kind: 'exited', atMs: 3000, code: 1, signal: null }, settings).model;
  assert.equal(exited.lastExit!.uptimeMs, 0, 'not 3000 ms from the first run\'s start');
});

// ---- What the worker's exit means: prevent and hold codes (issue #17). ----

const exitWith = (code: number, atMs: number, hold?: HoldRequest): WorkerEvent =>
  hold === undefined ? { kind: 'exited', atMs, code, signal: null } : { kind: 'exited', atMs, code, signal: null, hold };

test('a prevent code stops the worker: no restart, wanted down, the exit says the worker asked', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 2 };
  const exited = stepWorker(m, exitWith(3, 500), holding);
  assert.equal(exited.model.state, 'stopping');
  assert.equal(exited.model.wanted, 'down');
  assert.deepEqual(exited.effects, [{ kind: 'restart-prevented', code: 3 }, { kind: 'cancel-timer', timer: 'stable' }, { kind: 'stop-tree' }]);
  const gone = stepWorker(exited.model, { kind: 'tree-gone', atMs: 510 }, holding);
  assert.equal(gone.model.state, 'stopped');
  assert.deepEqual(gone.effects, [], 'no timer, no spawn');
  assert.equal(gone.model.lastExit?.asked, 'prevent');
  assert.equal(gone.model.consecutiveFailures, 2, 'not counted as a failure');
  assert.equal(gone.model.restarts.total, 0);
  // start-worker starts it again, as after stop-worker.
  const started = stepWorker(gone.model, { kind: 'start-requested', atMs: 600 }, holding);
  assert.equal(started.model.state, 'starting');
  assert.deepEqual(started.effects, [{ kind: 'spawn', generation: m.generation + 1 }]);
});

test('a prevent code goes before restart = "on-failure" and a code outside the lists is a crash as before', () => {
  const onFailure = { ...holding, restart: 'on-failure' as const, prevent_exit_codes: [0] };
  const exit0 = run([exitWith(0, 5), { kind: 'tree-gone', atMs: 6 }], onFailure, modelIn('running'));
  assert.equal(exit0.model.state, 'stopped');
  assert.equal(exit0.model.lastExit?.asked, 'prevent');
  const crash = run([exitWith(4, 5), { kind: 'tree-gone', atMs: 6 }], holding, modelIn('running'));
  assert.equal(crash.model.state, 'backoff');
  assert.equal(crash.model.lastExit?.asked, null);
  // A signal has no exit code: never a request.
  const killed = run([{ kind: 'exited', atMs: 5, code: null, signal: 'SIGKILL' }, { kind: 'tree-gone', atMs: 6 }], holding, modelIn('running'));
  assert.equal(killed.model.state, 'backoff');
});

test('an exit with a prevent code during an operator stop is the operator\'s: not recorded as the worker asking', () => {
  const r = run([{ kind: 'stop-requested', atMs: 1 }, exitWith(3, 2), { kind: 'tree-gone', atMs: 3 }], holding, modelIn('running'));
  assert.equal(r.model.state, 'stopped');
  assert.equal(r.model.lastExit?.asked, null);
  assert.ok(!r.effects.some((e) => e.kind === 'restart-prevented'));
});

test('a hold code without a hold file waits hold_ms from the exit, in held, not counted as a failure', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 4, startedAtMs: 0 };
  const exited = stepWorker(m, exitWith(75, 1000), holding);
  assert.equal(exited.model.state, 'stopping');
  assert.equal(exited.model.wanted, 'up');
  assert.deepEqual(exited.effects[0], { kind: 'hold-requested', code: 75, delayMs: 1_800_000, basis: 'hold_ms', fallbackReason: null });
  assert.equal(exited.model.consecutiveFailures, 4, 'a hold adds no failure');
  const gone = stepWorker(exited.model, { kind: 'tree-gone', atMs: 1200 }, holding);
  assert.equal(gone.model.state, 'held');
  assert.equal(gone.model.nextStartAtMs, 1000 + 1_800_000, 'the hold counts from the exit');
  assert.deepEqual(gone.effects, [
    { kind: 'hold-scheduled', delayMs: 1_800_000 - 200, basis: 'hold_ms', consecutiveFailures: 4 },
    { kind: 'arm-timer', timer: 'backoff', delayMs: 1_800_000 - 200 },
  ]);
  assert.equal(gone.model.restarts.hold, 1);
  assert.equal(gone.model.restarts.crash, 0);
  assert.equal(gone.model.lastExit?.asked, 'hold');
  // The hold ends: the next start, and a crash after it backs off from the kept count, not a grown one.
  const after = run([{ kind: 'backoff-elapsed', atMs: 1_801_000 }, { kind: 'spawned', atMs: 1_801_000, pid: 5 }, exitWith(1, 1_801_100), { kind: 'tree-gone', atMs: 1_801_110 }], holding, gone.model);
  assert.equal(after.model.consecutiveFailures, 5);
  assert.deepEqual(after.effects.find((e) => e.kind === 'restart-scheduled'), { kind: 'restart-scheduled', cause: 'crash', delayMs: 16_000, consecutiveFailures: 5, failed: false });
});

test('a hold never pushes a worker into failed, however often it comes', () => {
  const s = { ...holding, max_consecutive_restarts: 2, hold_ms: 100, hold_max_ms: 1000 };
  let m = run([{ kind: 'start-requested', atMs: 0 }], s).model;
  let now = 0;
  for (let i = 0; i < 5; i++) {
    m = run([{ kind: 'spawned', atMs: now, pid: 10 + i }, exitWith(75, now + 1), { kind: 'tree-gone', atMs: now + 2 }], s, m).model;
    assert.equal(m.state, 'held');
    assert.equal(m.consecutiveFailures, 0);
    now = m.nextStartAtMs!;
    m = stepWorker(m, { kind: 'backoff-elapsed', atMs: now }, s).model;
  }
  assert.equal(m.restarts.hold, 5);
});

test('a hold after a stable run clears the count, as any exit after a stable run does', () => {
  const m = { ...modelIn('running'), consecutiveFailures: 3, startedAtMs: 0 };
  const r = run([exitWith(75, 60_000), { kind: 'tree-gone', atMs: 60_001 }], holding, m);
  assert.equal(r.model.state, 'held');
  assert.equal(r.model.consecutiveFailures, 0);
});

test('the hold file sets the end of the hold, capped at hold_max_ms; unreadable, invalid or past falls back to hold_ms', () => {
  const cases: { hold: HoldRequest; delayMs: number; basis: string; fallback: boolean }[] = [
    { hold: { kind: 'at', inMs: 3_600_000 }, delayMs: 3_600_000, basis: 'file', fallback: false },
    { hold: { kind: 'at', inMs: 30_000_000 }, delayMs: 21_600_000, basis: 'hold_max_ms', fallback: false },
    { hold: { kind: 'at', inMs: 0 }, delayMs: 1_800_000, basis: 'hold_ms', fallback: true },
    { hold: { kind: 'at', inMs: -5000 }, delayMs: 1_800_000, basis: 'hold_ms', fallback: true },
    { hold: { kind: 'invalid', text: 'tomorrow' }, delayMs: 1_800_000, basis: 'hold_ms', fallback: true },
    { hold: { kind: 'unreadable', reason: 'EACCES' }, delayMs: 1_800_000, basis: 'hold_ms', fallback: true },
    { hold: { kind: 'none' }, delayMs: 1_800_000, basis: 'hold_ms', fallback: false },
  ];
  for (const c of cases) {
    const r = run([exitWith(75, 1000, c.hold), { kind: 'tree-gone', atMs: 1000 }], holding, modelIn('running'));
    const asked = r.effects.find((e) => e.kind === 'hold-requested');
    assert.ok(asked?.kind === 'hold-requested', JSON.stringify(c.hold));
    assert.equal(asked.delayMs, c.delayMs, JSON.stringify(c.hold));
    assert.equal(asked.basis, c.basis, JSON.stringify(c.hold));
    assert.equal(asked.fallbackReason !== null, c.fallback, JSON.stringify(c.hold));
    assert.equal(r.model.nextStartAtMs, 1000 + c.delayMs);
  }
});

test('a hold whose end passed while the tree was being cleared starts at once', () => {
  const r = run([exitWith(75, 1000, { kind: 'at', inMs: 500 }), { kind: 'tree-gone', atMs: 3000 }], holding, modelIn('running'));
  assert.equal(r.model.state, 'held');
  assert.equal(r.model.nextStartAtMs, 3000);
  assert.deepEqual(r.effects.at(-1), { kind: 'arm-timer', timer: 'backoff', delayMs: 0 });
});

test('start-worker and restart-worker end a hold at once; stop-worker turns it into stopped', () => {
  const held = modelIn('held');
  const started = stepWorker(held, { kind: 'start-requested', atMs: 30 }, holding);
  assert.equal(started.model.state, 'starting');
  assert.deepEqual(started.effects.map((e) => e.kind), ['cancel-timer', 'spawn']);
  assert.equal(started.model.nextStartAtMs, null);
  const restarted = stepWorker(held, { kind: 'restart-requested', atMs: 30, cause: 'operator' }, holding);
  assert.equal(restarted.model.state, 'starting');
  assert.equal(restarted.model.restarts.operator, held.restarts.operator + 1);
  const stopped = stepWorker(held, { kind: 'stop-requested', atMs: 30 }, holding);
  assert.equal(stopped.model.state, 'stopped');
  assert.equal(stopped.model.nextStartAtMs, null);
  assert.deepEqual(stopped.effects, [{ kind: 'cancel-timer', timer: 'backoff' }]);
  // Memory and health restarts have no worker to act on.
  assert.deepEqual(stepWorker(held, { kind: 'restart-requested', atMs: 30, cause: 'memory' }, holding), { model: held, effects: [] });
});

test('a start or stop asked while a held worker\'s tree is cleared wins over the hold', () => {
  const exiting = stepWorker(modelIn('running'), exitWith(75, 10), holding).model;
  const started = run([{ kind: 'start-requested', atMs: 11 }, { kind: 'tree-gone', atMs: 12 }], holding, exiting).model;
  assert.equal(started.state, 'starting');
  assert.equal(started.pendingHold, null);
  const stopped = run([{ kind: 'stop-requested', atMs: 11 }, { kind: 'tree-gone', atMs: 12 }], holding, exiting).model;
  assert.equal(stopped.state, 'stopped');
  assert.equal(stopped.nextStartAtMs, null);
});

test('a worker wanted down that exits with a hold code stays down', () => {
  const asked = run([{ kind: 'start-requested', atMs: 0 }, { kind: 'stop-requested', atMs: 5 }], holding).model;
  const r = run([exitWith(75, 9), { kind: 'tree-gone', atMs: 10 }], holding, asked);
  assert.equal(r.model.state, 'stopped');
  assert.equal(r.model.lastExit?.asked, null);
});
