import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeAction, formatServiceStatus, formatSize, type ServiceStatusInput } from '../../src/policy/service-status.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
// No swap: the line reads as it did before swap was counted (most machines have none, this one included).
const memory = { level: 'ok', availableBytes: 5.1 * GiB, treeRssBytes: 812 * MiB, treeSwapBytes: 0, treeProcesses: 14 };
const worker = (w: Partial<ServiceStatusInput['worker']>): ServiceStatusInput['worker'] => ({
  state: 'running', pid: 4121, generation: 3, consecutiveFailures: 0, retryInMs: null, ...w,
});

test('the STATUS line for each worker state', () => {
  const cases: [ServiceStatusInput, string][] = [
    [{ worker: worker({}), memory, action: null }, 'worker running, pid 4121, gen 3, tree 812 MiB in 14 procs, 5.1 GiB available'],
    [{ worker: worker({ state: 'starting', pid: null, generation: 1 }), memory: null, action: null }, 'worker starting, gen 1'],
    [{ worker: worker({ state: 'stopping' }), memory, action: null }, 'worker stopping, pid 4121, gen 3, tree 812 MiB in 14 procs, 5.1 GiB available'],
    // The guard's last look may still count a tree that is gone.
    [{ worker: worker({ state: 'backoff', pid: null, consecutiveFailures: 3, retryInMs: 3200 }), memory, action: null }, 'worker backoff, gen 3, 3 failures in a row, retry in 4 s, 5.1 GiB available'],
    [{ worker: worker({ state: 'backoff', pid: null, consecutiveFailures: 1, retryInMs: 0 }), memory: null, action: null }, 'worker backoff, gen 3, 1 failure in a row, retry in 0 s'],
    [{ worker: worker({ state: 'failed', pid: null, generation: 12, consecutiveFailures: 10, retryInMs: 300_000 }), memory: null, action: null }, 'worker failed, gen 12, 10 failures in a row, retry in 5 min'],
    [{ worker: worker({ state: 'stopped', pid: null }), memory, action: null }, 'worker stopped, gen 3, 5.1 GiB available'],
    // A hold is no failure: its count is not shown, the end is.
    [{ worker: worker({ state: 'held', pid: null, consecutiveFailures: 2, retryInMs: 1_800_000 }), memory: null, action: null }, 'worker held, gen 3, next start in 30 min'],
    [{ worker: worker({ state: 'stopped', pid: null, generation: 0 }), memory: null, action: null }, 'worker stopped'],
    [{ worker: worker({}), memory: { ...memory, level: 'low', treeProcesses: 1 }, action: null }, 'worker running, pid 4121, gen 3, tree 812 MiB in 1 proc, 5.1 GiB available, memory low'],
    [{ worker: worker({}), memory: { level: 'ok', availableBytes: null, treeRssBytes: null, treeSwapBytes: null, treeProcesses: null }, action: null }, 'worker running, pid 4121, gen 3'],
  ];
  for (const [input, expected] of cases) assert.equal(formatServiceStatus(input), expected);
});

test('swap shows beside the tree RSS when some is swapped out, and not at all from a daemon that does not count it', () => {
  const cases: [ServiceStatusInput['memory'], string][] = [
    [{ ...memory, treeSwapBytes: 1.2 * GiB }, 'worker running, pid 4121, gen 3, tree 812 MiB (+1.2 GiB swap) in 14 procs, 5.1 GiB available'],
    [{ ...memory, treeSwapBytes: 1 }, 'worker running, pid 4121, gen 3, tree 812 MiB (+1 B swap) in 14 procs, 5.1 GiB available'],
    [{ ...memory, treeSwapBytes: null }, 'worker running, pid 4121, gen 3, tree 812 MiB in 14 procs, 5.1 GiB available'],
  ];
  for (const [m, expected] of cases) assert.equal(formatServiceStatus({ worker: worker({}), memory: m, action: null }), expected);
  // Only while the tree lives, as the RSS.
  assert.equal(formatServiceStatus({ worker: worker({ state: 'stopped', pid: null }), memory: { ...memory, treeSwapBytes: GiB }, action: null }), 'worker stopped, gen 3, 5.1 GiB available');
});

test('a memory or health action leads the line it caused', () => {
  const kill = describeAction({ kind: 'memory-kill', reason: 'low', comm: 'cc1plus', pid: 5012, rssBytes: 1.9 * GiB, swapBytes: 0 });
  assert.equal(kill, 'memory low: SIGTERM to cc1plus pid 5012 (1.9 GiB)');
  assert.equal(formatServiceStatus({ worker: worker({}), memory, action: kill }), `${kill}; worker running, pid 4121, gen 3, tree 812 MiB in 14 procs, 5.1 GiB available`);
  assert.equal(describeAction({ kind: 'memory-kill-escalated', comm: 'node', pid: 7 }), 'memory: SIGKILL to node pid 7');
  assert.equal(describeAction({ kind: 'memory-restart', reason: 'tree_limit', treeRssBytes: 312 * 2 ** 20, treeSwapBytes: 0, limitBytes: 300 * 2 ** 20 }), 'memory tree limit (tree 312 MiB over 300 MiB): restarting the worker');
  assert.equal(describeAction({ kind: 'memory-restart', reason: 'critical', treeRssBytes: 1.5 * 2 ** 30, treeSwapBytes: 0, limitBytes: null }), 'memory critical (tree 1.5 GiB): restarting the worker');
  // With swap: the figures the decision compared, RSS and swap apart.
  assert.equal(describeAction({ kind: 'memory-kill', reason: 'critical', comm: 'claude', pid: 77, rssBytes: 300 * MiB, swapBytes: 7 * GiB }), 'memory critical: SIGTERM to claude pid 77 (300 MiB +7.0 GiB swap)');
  assert.equal(describeAction({ kind: 'memory-restart', reason: 'tree_limit', treeRssBytes: 2 * GiB, treeSwapBytes: 7 * GiB, limitBytes: 8 * GiB }), 'memory tree limit (tree 2.0 GiB +7.0 GiB swap over 8.0 GiB): restarting the worker');
  assert.equal(describeAction({ kind: 'restart', cause: 'health' }), 'health restart');
});

test('sizes in binary units, at most three figures', () => {
  const cases: [number, string][] = [[0, '0 B'], [1023, '1023 B'], [1024, '1.0 KiB'], [64 * 1024, '64 KiB'], [812 * MiB, '812 MiB'], [5.1 * GiB, '5.1 GiB'], [9.96 * GiB, '10.0 GiB'], [23 * GiB, '23 GiB']];
  for (const [bytes, text] of cases) assert.equal(formatSize(bytes), text, String(bytes));
});
