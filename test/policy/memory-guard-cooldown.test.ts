// What the memory guard's cooldown covers (#15 item 8): after any finished kill or restart it holds
// back the system-memory actions (low, critical) for cooldown_ms, while the kernel reclaims; it never
// holds back the tree limit, which measures the tree exactly, and after a restart measures a new
// generation. Every case starts from one kind of finished action, at 1000 ms: cooldown until 11 000.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  initialMemoryGuardState, stepMemoryGuard,
  type MemoryGuardConfig, type MemoryGuardInput, type MemoryGuardState, type MemoryGuardStep,
} from '../../src/policy/memory-guard.js';
import type { MemorySample, TreeProcess } from '../../src/policy/memory-sample.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const config: MemoryGuardConfig = {
  min_available_bytes: 2 * GiB,
  critical_threshold_bytes: 1 * GiB,
  poll_interval_ms: 5000,
  node_kill_threshold_bytes: 500 * MiB,
  psi_some_avg10: null,
  kill_grace_ms: 3000,
  cooldown_ms: 10_000,
  worker_max_bytes: 3000 * MiB,
};
const FINISHED_AT_MS = 1000;
const COOLDOWN_END_MS = FINISHED_AT_MS + config.cooldown_ms;

const OK = 2 * GiB;
const LOW = 2 * GiB - 1;
const CRITICAL = 1 * GiB - 1;

const VICTIM: TreeProcess = { pid: 201, comm: 'claude', rssBytes: 800 * MiB, swapBytes: 0, isWorkerMain: false };
const main = (mib: number): TreeProcess => ({ pid: 100, comm: 'node', rssBytes: mib * MiB, swapBytes: 0, isWorkerMain: true });
/** Trees with and without a victim, over and under the 3000 MiB limit. */
const OVER = [main(2500), VICTIM];
const UNDER = [main(900), VICTIM];
const OVER_NO_VICTIM = [main(3100)];
const UNDER_NO_VICTIM = [main(900)];

const sample = (atMs: number, availableBytes: number, tree: TreeProcess[]): MemorySample => ({
  atMs, availableBytes, totalBytes: 16 * GiB, psi: null, tree, extraCandidates: [],
});

/** Each leaves nothing in flight and the cooldown running until COOLDOWN_END_MS. */
const FINISHED_ACTIONS: { what: string; inputs: MemoryGuardInput[] }[] = [
  {
    what: 'a tree-limit restart',
    inputs: [sample(0, OK, OVER), sample(100, OK, OVER), { kind: 'restart-finished', atMs: FINISHED_AT_MS }],
  },
  {
    what: 'a critical restart (nothing left to kill)',
    inputs: [sample(0, CRITICAL, UNDER_NO_VICTIM), sample(100, CRITICAL, UNDER_NO_VICTIM), { kind: 'restart-finished', atMs: FINISHED_AT_MS }],
  },
  {
    what: 'a low kill',
    inputs: [sample(0, LOW, UNDER), sample(100, LOW, UNDER), { kind: 'kill-finished', atMs: FINISHED_AT_MS, pid: VICTIM.pid }],
  },
  {
    what: 'a critical kill',
    inputs: [sample(0, CRITICAL, UNDER), sample(100, CRITICAL, UNDER), { kind: 'kill-finished', atMs: FINISHED_AT_MS, pid: VICTIM.pid }],
  },
];

function run(inputs: MemoryGuardInput[], cfg: MemoryGuardConfig = config): { state: MemoryGuardState; steps: MemoryGuardStep[] } {
  let state = initialMemoryGuardState();
  const steps: MemoryGuardStep[] = [];
  for (const input of inputs) {
    const step = stepMemoryGuard(state, input, cfg);
    steps.push(step);
    state = step.state;
  }
  return { state, steps };
}

function summarize(step: MemoryGuardStep): string {
  const a = step.action;
  if (a === null) return step.verdict;
  return a.kind === 'kill' ? `kill ${a.pid} (${a.reason})` : `restart-worker (${a.reason})`;
}

const t0 = FINISHED_AT_MS + 100;
const cases: { name: string; after: MemoryGuardInput[]; expect: string[] }[] = [
  // The tree limit is never held.
  {
    name: 'a tree over the limit, memory ok: restarted at its second reading, inside the cooldown',
    after: [sample(t0, OK, OVER), sample(t0 + 100, OK, OVER)],
    expect: ['tree-limit-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  {
    name: 'a tree over the limit with no victim in it: restarted inside the cooldown',
    after: [sample(t0, OK, OVER_NO_VICTIM), sample(t0 + 100, OK, OVER_NO_VICTIM)],
    expect: ['tree-limit-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  {
    name: 'a tree over the limit while memory is low with a victim: the tree limit restarts, the held kill does not happen',
    after: [sample(t0, LOW, OVER), sample(t0 + 100, LOW, OVER)],
    expect: ['tree-limit-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  {
    name: 'a tree over the limit while memory is critical with a victim: the held critical kill gives way to the tree limit',
    after: [sample(t0, CRITICAL, OVER), sample(t0 + 100, CRITICAL, OVER)],
    expect: ['critical-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  {
    name: 'a tree over the limit while memory is critical with no victim: the held critical restart gives way to the tree limit',
    after: [sample(t0, CRITICAL, OVER_NO_VICTIM), sample(t0 + 100, CRITICAL, OVER_NO_VICTIM)],
    expect: ['critical-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  {
    name: 'a held low kill, then the tree crosses the limit: its first reading is awaited at the floor, its second restarts',
    after: [sample(t0, LOW, UNDER), sample(t0 + 100, LOW, UNDER), sample(t0 + 200, LOW, OVER), sample(t0 + 300, LOW, OVER)],
    expect: ['low-awaiting-confirmation', 'cooldown', 'tree-limit-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  {
    name: 'the tree limit still needs two readings in a row after the action',
    after: [sample(t0, OK, OVER), sample(t0 + 100, OK, UNDER), sample(t0 + 200, OK, OVER), sample(t0 + 300, OK, OVER)],
    expect: ['tree-limit-awaiting-confirmation', 'ok', 'tree-limit-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
  // The system-memory actions are held until the cooldown ends, to the millisecond.
  {
    name: 'low with a victim waits out the cooldown, then kills',
    after: [sample(t0, LOW, UNDER), sample(t0 + 100, LOW, UNDER), sample(COOLDOWN_END_MS - 1, LOW, UNDER), sample(COOLDOWN_END_MS, LOW, UNDER)],
    expect: ['low-awaiting-confirmation', 'cooldown', 'cooldown', 'kill 201 (low)'],
  },
  {
    name: 'critical with a victim waits out the cooldown, then kills',
    after: [sample(t0, CRITICAL, UNDER), sample(t0 + 100, CRITICAL, UNDER), sample(COOLDOWN_END_MS - 1, CRITICAL, UNDER), sample(COOLDOWN_END_MS, CRITICAL, UNDER)],
    expect: ['critical-awaiting-confirmation', 'cooldown', 'cooldown', 'kill 201 (critical)'],
  },
  {
    name: 'critical with no victim waits out the cooldown, then restarts with reason critical',
    after: [
      sample(t0, CRITICAL, UNDER_NO_VICTIM), sample(t0 + 100, CRITICAL, UNDER_NO_VICTIM),
      sample(COOLDOWN_END_MS - 1, CRITICAL, UNDER_NO_VICTIM), sample(COOLDOWN_END_MS, CRITICAL, UNDER_NO_VICTIM),
    ],
    expect: ['critical-awaiting-confirmation', 'cooldown', 'cooldown', 'restart-worker (critical)'],
  },
  {
    name: 'low with nothing to kill says so during the cooldown, as after it',
    after: [sample(t0, LOW, UNDER_NO_VICTIM), sample(t0 + 100, LOW, UNDER_NO_VICTIM)],
    expect: ['low-awaiting-confirmation', 'low-nothing-to-kill'],
  },
  // After the cooldown, the usual order: critical before the tree limit before low.
  {
    name: 'after the cooldown, critical with a victim kills before the tree limit restarts',
    after: [sample(COOLDOWN_END_MS, CRITICAL, OVER), sample(COOLDOWN_END_MS + 100, CRITICAL, OVER)],
    expect: ['critical-awaiting-confirmation', 'kill 201 (critical)'],
  },
  {
    name: 'after the cooldown, the tree limit beats a low kill',
    after: [sample(COOLDOWN_END_MS, LOW, OVER), sample(COOLDOWN_END_MS + 100, LOW, OVER)],
    expect: ['tree-limit-awaiting-confirmation', 'restart-worker (tree_limit)'],
  },
];

for (const finished of FINISHED_ACTIONS) {
  for (const c of cases) {
    test(`after ${finished.what}: ${c.name}`, () => {
      const { steps } = run([...finished.inputs, ...c.after]);
      const before = steps.slice(0, finished.inputs.length);
      assert.equal(before.at(-1)?.state.inFlight, null, 'the prefix left an action in flight');
      assert.equal(before.at(-1)?.state.cooldownUntilMs, COOLDOWN_END_MS);
      assert.deepEqual(steps.slice(finished.inputs.length).map(summarize), c.expect);
    });
  }
}

test('a system action held by the cooldown polls toward the tree limit as the tree nears it', () => {
  const prefix = FINISHED_ACTIONS[2]!.inputs;
  // Tree 10 MiB under the limit, growing: the next look must come before it can pass the limit.
  const near = [main(2190), VICTIM];
  const { steps } = run([...prefix, sample(t0, LOW, [main(2180), VICTIM]), sample(t0 + 100, LOW, near)]);
  const held = steps.at(-1)!;
  assert.equal(held.verdict, 'cooldown');
  assert.ok(held.nextPollMs < 1000, `next look in ${held.nextPollMs} ms with the tree 10 MiB under its limit`);
});

// The relapse of #15: every generation leaks 40 MiB/s against a 300 MiB limit. The old tree takes
// STOP_MS to go, the restart waits BACKOFF_MS (empty tree), then the new generation starts at
// START_MIB. With the cooldown holding the tree limit, generations 2 and 3 reached 599-643 MiB.
const LIMIT = 300 * MiB;
const LEAK_BYTES_PER_MS = (40 * MiB) / 1000;
const STOP_MS = 400;
const BACKOFF_MS = 1000;
const START_MIB = 50;

function simulateRelapses(generations: number, cooldownMs: number, scanLatencyMs: number): number[] {
  const cfg: MemoryGuardConfig = { ...config, worker_max_bytes: LIMIT, min_available_bytes: 64 * MiB, critical_threshold_bytes: 32 * MiB, cooldown_ms: cooldownMs };
  let state = initialMemoryGuardState();
  let atMs = 0;
  let generationStartMs = 0;
  let restartFinishedAtMs: number | null = null;
  const restartedAtBytes: number[] = [];
  for (let samples = 0; samples < 10_000 && restartedAtBytes.length < generations; samples++) {
    if (restartFinishedAtMs !== null && atMs >= restartFinishedAtMs) {
      const step = stepMemoryGuard(state, { kind: 'restart-finished', atMs: restartFinishedAtMs }, cfg);
      state = step.state;
      generationStartMs = restartFinishedAtMs + BACKOFF_MS;
      restartFinishedAtMs = null;
      atMs += step.nextPollMs;
      continue;
    }
    const running = restartFinishedAtMs === null && atMs >= generationStartMs;
    const treeBytes = running ? START_MIB * MiB + LEAK_BYTES_PER_MS * (atMs - generationStartMs) : 0;
    const tree = running ? [{ pid: 100 + restartedAtBytes.length, comm: 'node', rssBytes: treeBytes, swapBytes: 0, isWorkerMain: true }] : [];
    const step = stepMemoryGuard(state, sample(atMs, 8 * GiB, tree), cfg);
    state = step.state;
    if (step.action !== null) {
      assert.equal(step.action.kind === 'restart-worker' && step.action.reason, 'tree_limit');
      restartedAtBytes.push(treeBytes);
      restartFinishedAtMs = atMs + STOP_MS;
    }
    atMs += step.nextPollMs + scanLatencyMs;
  }
  return restartedAtBytes;
}

for (const cooldownMs of [15_000, 60_000]) {
  for (const scanLatencyMs of [0, 3, 10]) {
    test(`#15: with cooldown_ms ${cooldownMs} and ${scanLatencyMs} ms scan latency, each of five leaking generations is restarted before 330 MiB`, () => {
      const restartedAt = simulateRelapses(5, cooldownMs, scanLatencyMs).map((b) => Math.round((b / MiB) * 10) / 10);
      assert.equal(restartedAt.length, 5, `only ${restartedAt.length} restarts`);
      for (const [i, mib] of restartedAt.entries()) {
        assert.ok(mib > 300 && mib < 330, `generation ${i + 1} restarted at ${mib} MiB (all: ${restartedAt.join(', ')})`);
      }
    });
  }
}
