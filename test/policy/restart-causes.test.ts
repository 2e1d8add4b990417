// The restart causes (issue #17 adds `recycle`, issue #18 `oom`): how each one counts, and docs/supervision.md
// naming exactly the causes the policy has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  initialWorkerModel, isFailureCause, RESTART_CAUSES, stepWorker,
  type RestartCause, type WorkerEffect, type WorkerEvent, type WorkerModel, type WorkerPolicySettings,
} from '../../src/policy/worker-state.js';

const settings: WorkerPolicySettings = {
  initial_backoff_ms: 1000, max_backoff_ms: 300_000, backoff_multiplier: 2, max_consecutive_restarts: 10, stable_after_ms: 60_000, restart: 'always',
  prevent_exit_codes: [], hold_exit_codes: [], hold_ms: 1_800_000, hold_max_ms: 21_600_000,
};

function run(events: WorkerEvent[], from: WorkerModel = initialWorkerModel()): { model: WorkerModel; effects: WorkerEffect[] } {
  let model = from;
  const effects: WorkerEffect[] = [];
  for (const e of events) {
    const step = stepWorker(model, e, settings);
    model = step.model;
    effects.push(...step.effects);
  }
  return { model, effects };
}

/** Running since 0, with `failures` consecutive failures behind it. */
function runningWith(failures: number): WorkerModel {
  const m = run([{ kind: 'start-requested', atMs: 0 }, { kind: 'spawned', atMs: 0, pid: 100 }]).model;
  return { ...m, consecutiveFailures: failures };
}

test('a recycle restarts at once once the tree is gone, counted as recycle, the failure count untouched', () => {
  const { model, effects } = run([
    { kind: 'restart-requested', atMs: 5000, cause: 'recycle' },
    { kind: 'tree-gone', atMs: 5100 },
  ], runningWith(2));
  assert.equal(model.state, 'starting');
  assert.equal(model.generation, 2);
  assert.equal(model.consecutiveFailures, 2);
  assert.deepEqual(model.restarts, { total: 1, crash: 0, oom: 0, memory: 0, operator: 0, health: 0, hold: 0, recycle: 1 });
  assert.ok(!effects.some((e) => e.kind === 'restart-scheduled' || e.kind === 'arm-timer' && e.timer === 'backoff'), 'no backoff');
  assert.ok(effects.some((e) => e.kind === 'spawn' && e.generation === 2));
});

test('a health restart is a failure: it grows the count and waits out the backoff', () => {
  const { model, effects } = run([
    { kind: 'restart-requested', atMs: 5000, cause: 'health' },
    { kind: 'tree-gone', atMs: 5100 },
  ], runningWith(2));
  assert.equal(model.state, 'backoff');
  assert.equal(model.consecutiveFailures, 3);
  assert.equal(model.restarts.health, 1);
  assert.deepEqual(effects.find((e) => e.kind === 'restart-scheduled'), { kind: 'restart-scheduled', cause: 'health', delayMs: 4000, consecutiveFailures: 3, failed: false });
});

test('a recycle asked while stopping, backing off or stopped changes nothing', () => {
  const stopping = run([{ kind: 'stop-requested', atMs: 10 }], runningWith(0)).model;
  const backoff = run([{ kind: 'restart-requested', atMs: 10, cause: 'health' }, { kind: 'tree-gone', atMs: 20 }], runningWith(0)).model;
  for (const m of [stopping, backoff, initialWorkerModel()]) {
    assert.deepEqual(stepWorker(m, { kind: 'restart-requested', atMs: 30, cause: 'recycle' }, settings), { model: m, effects: [] }, m.state);
  }
});

test('only crash, oom, memory and health count as failures', () => {
  assert.deepEqual(RESTART_CAUSES.filter(isFailureCause), ['crash', 'oom', 'memory', 'health']);
});

test('an exit after the OOM killer struck in the tree\'s cgroup restarts as oom: a failure with its backoff', () => {
  const { model, effects } = run([
    { kind: 'exited', atMs: 5000, code: null, signal: 'SIGKILL', oomKilled: true },
    { kind: 'tree-gone', atMs: 5100 },
  ], runningWith(2));
  assert.equal(model.state, 'backoff');
  assert.equal(model.consecutiveFailures, 3);
  assert.deepEqual(model.restarts, { total: 1, crash: 0, oom: 1, memory: 0, operator: 0, health: 0, hold: 0, recycle: 0 });
  assert.deepEqual(effects.find((e) => e.kind === 'restart-scheduled'), { kind: 'restart-scheduled', cause: 'oom', delayMs: 4000, consecutiveFailures: 3, failed: false });
});

test('without an OOM kill the same exit is a crash; a prevent code or a stop wins over an OOM kill', () => {
  const crash = run([{ kind: 'exited', atMs: 5000, code: null, signal: 'SIGKILL', oomKilled: false }, { kind: 'tree-gone', atMs: 5100 }], runningWith(0));
  assert.equal(crash.model.restarts.crash, 1);
  assert.equal(crash.model.restarts.oom, 0);
  const prevented = stepWorker(runningWith(0), { kind: 'exited', atMs: 5000, code: 3, signal: null, oomKilled: true }, { ...settings, prevent_exit_codes: [3] });
  assert.equal(prevented.model.wanted, 'down');
  assert.equal(prevented.model.pendingRestart, null);
  const stopping = run([{ kind: 'stop-requested', atMs: 10 }, { kind: 'exited', atMs: 20, code: null, signal: 'SIGKILL', oomKilled: true }, { kind: 'tree-gone', atMs: 30 }], runningWith(0));
  assert.equal(stopping.model.state, 'stopped');
  assert.equal(stopping.model.restarts.total, 0);
});

test('docs/supervision.md names exactly the restart causes of the policy', () => {
  const doc = readFileSync(new URL('../../../docs/supervision.md', import.meta.url), 'utf8');
  const line = /^- Restart causes, one name each[^\n]*(?:\n {2}[^\n]*)*/m.exec(doc)?.[0];
  assert.ok(line, 'docs/supervision.md has a "Restart causes" item');
  // The names follow the colon; before it, the item says where they are used (`status` among them).
  const list = line.slice(line.indexOf(':') + 1).split('`status` counts')[0]!;
  const named = [...list.matchAll(/`([a-z]+)`/g)].map((m) => m[1] as RestartCause);
  assert.deepEqual([...new Set(named)].sort(), [...RESTART_CAUSES].sort());
});
