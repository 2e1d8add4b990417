// What metrics and the notifier build of the status: metrics leaves the tree listing out (it never
// shows it, and the listing reads /proc/PID/cmdline for up to 100 processes); the notifier builds
// only the worker part, the same as `status` shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusOf, workerStatusOf, type ControlParts } from '../../src/daemon/control-handler.js';
import { initialWorkerModel } from '../../src/policy/worker-state.js';
import { DEFAULTS } from '../../src/config/defaults.js';

function stubParts(): { parts: ControlParts; calls: { treeListing: number; memoryStatus: number } } {
  const calls = { treeListing: 0, memoryStatus: 0 };
  const supervisor = {
    state: { ...initialWorkerModel(), state: 'running', pid: 77, generation: 2, startedAtMs: 1000 },
    wallTimes: { startedAtMs: Date.parse('2026-11-25T10:00:00.000Z'), lastExitAtMs: null },
    clockMs: () => 6000,
    argv: ['node', 'w.mjs'],
    lastExitTail: () => [],
    lastSpawnError: null,
  };
  const memoryGuard = {
    status: () => { calls.memoryStatus += 1; return null; },
    treeListing: () => {
      calls.treeListing += 1;
      return { processes: [{ pid: 77, ppid: 1, comm: 'node', command: ['node', 'w.mjs'], rss_bytes: 1 }], left_out: 0 };
    },
  };
  const parts = {
    opts: { loaded: { path: '/c.toml' } }, logTarget: 'stderr', startedAtMs: Date.now() - 1000,
    supervisor, memoryGuard, config: { current: DEFAULTS }, native: { loaded: true },
    tree: () => ({ backend: 'proc', cgroup: null, leaf: null }),
  } as unknown as ControlParts;
  return { parts, calls };
}

test('status lists the tree; the metrics status does not ask for the listing', () => {
  const { parts, calls } = stubParts();
  const full = statusOf(parts);
  assert.equal(calls.treeListing, 1);
  assert.equal(full.tree?.processes?.length, 1);
  const forMetrics = statusOf(parts, { treeListing: false });
  assert.equal(calls.treeListing, 1, 'no listing (no cmdline reads) for metrics');
  assert.deepEqual(forMetrics.tree?.processes, []);
  assert.deepEqual({ ...forMetrics, tree: full.tree, daemon: full.daemon }, { ...full, daemon: full.daemon });
});

test('the notifier\'s worker part is what status shows, built without a memory look or a listing', () => {
  const { parts, calls } = stubParts();
  const worker = workerStatusOf(parts);
  assert.deepEqual(calls, { treeListing: 0, memoryStatus: 0 });
  const { worker: fromStatus } = statusOf(parts);
  assert.deepEqual({ ...worker, uptime_ms: 0 }, { ...fromStatus, uptime_ms: 0 });
  assert.equal(worker.pid, 77);
  assert.equal(worker.uptime_ms, 5000);
});
