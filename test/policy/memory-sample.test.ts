import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareByMemoryDescending, processMemoryBytes, topProcesses, treeMemoryBytes, treeRssBytes, treeSwapBytes, type TreeProcess,
} from '../../src/policy/memory-sample.js';

const MiB = 1024 * 1024;
const proc = (pid: number, rssMiB: number, isWorkerMain = false, swapMiB = 0): TreeProcess => ({
  pid,
  comm: `p${pid}`,
  rssBytes: rssMiB * MiB,
  swapBytes: swapMiB * MiB,
  isWorkerMain,
});
const sized = (pid: number, rssBytes: number, swapBytes = 0) => ({ pid, rssBytes, swapBytes });

test('the tree RSS is the sum of every process, the main one included', () => {
  assert.equal(treeRssBytes([proc(1, 100, true), proc(2, 50), proc(3, 25)]), 175 * MiB);
});

test('an empty tree has zero RSS', () => {
  assert.equal(treeRssBytes([]), 0);
});

test('the tree RSS and swap are summed apart: RSS never includes swap', () => {
  const tree = [proc(1, 100, true, 30), proc(2, 50, false, 0), proc(3, 0, false, 7000)];
  assert.equal(treeRssBytes(tree), 150 * MiB);
  assert.equal(treeSwapBytes(tree), 7030 * MiB);
  assert.equal(treeSwapBytes([]), 0);
});

test('the tree figure the limit compares with is RSS + swap, unless the sample brings its own', () => {
  const tree = [proc(1, 100, true, 30), proc(2, 50, false, 20)];
  assert.equal(treeMemoryBytes({ tree }), 200 * MiB);
  assert.equal(treeMemoryBytes({ tree: [proc(1, 100, true), proc(2, 50)] }), 150 * MiB, 'no swap: the RSS, as before');
  assert.equal(treeMemoryBytes({ tree: [] }), 0);
  // A source that counts the tree whole (a cgroup) replaces the sum, 0 included.
  assert.equal(treeMemoryBytes({ tree, treeBytes: 999 * MiB }), 999 * MiB);
  assert.equal(treeMemoryBytes({ tree, treeBytes: 0 }), 0);
});

test('a process holds its RSS + swap', () => {
  assert.equal(processMemoryBytes({ rssBytes: 5, swapBytes: 7 }), 12);
  assert.equal(processMemoryBytes({ rssBytes: 5, swapBytes: 0 }), 5);
});

test('the top processes are ordered by RSS + swap: a swapped-out giant comes first', () => {
  const tree = [proc(10, 700, true), proc(11, 20, false, 4000), proc(12, 300, false, 300), proc(13, 500)];
  assert.deepEqual(topProcesses(tree).map((p) => p.pid), [11, 10, 12]);
});

test('the top processes come largest first and default to three', () => {
  const tree = [proc(10, 5), proc(11, 300), proc(12, 40), proc(13, 700, true), proc(14, 1)];
  assert.deepEqual(topProcesses(tree).map((p) => p.pid), [13, 11, 12]);
});

const topCases: { name: string; tree: TreeProcess[]; n: number; pids: number[] }[] = [
  { name: 'n larger than the tree returns the whole tree', tree: [proc(1, 1), proc(2, 2)], n: 5, pids: [2, 1] },
  { name: 'n = 0 returns nothing', tree: [proc(1, 1)], n: 0, pids: [] },
  { name: 'an empty tree returns nothing', tree: [], n: 3, pids: [] },
  { name: 'equal RSS is ordered by lower pid', tree: [proc(9, 50), proc(3, 50), proc(7, 50)], n: 2, pids: [3, 7] },
  { name: 'n = 1 returns the largest', tree: [proc(4, 10), proc(5, 90), proc(6, 30)], n: 1, pids: [5] },
];
for (const c of topCases) {
  test(`topProcesses: ${c.name}`, () => {
    assert.deepEqual(topProcesses(c.tree, c.n).map((p) => p.pid), c.pids);
  });
}

test('topProcesses leaves its input in its original order', () => {
  const tree = [proc(1, 1), proc(2, 2), proc(3, 3)];
  topProcesses(tree, 2);
  assert.deepEqual(tree.map((p) => p.pid), [1, 2, 3]);
});

test('topProcesses rejects a negative or fractional count, naming it', () => {
  assert.throws(() => topProcesses([], -1), { name: 'RangeError', message: /got -1/ });
  assert.throws(() => topProcesses([], 1.5), { name: 'RangeError', message: /got 1\.5/ });
});

test('the comparison puts larger RSS + swap first and breaks ties by lower pid', () => {
  assert.ok(compareByMemoryDescending(sized(9, 2), sized(1, 1)) < 0);
  assert.ok(compareByMemoryDescending(sized(1, 1), sized(9, 2)) > 0);
  assert.ok(compareByMemoryDescending(sized(1, 5), sized(2, 5)) < 0);
  assert.equal(compareByMemoryDescending(sized(4, 5), sized(4, 5)), 0);
  assert.ok(compareByMemoryDescending(sized(9, 1, 2), sized(1, 2)) < 0, 'swap makes the smaller RSS the larger');
  assert.ok(compareByMemoryDescending(sized(1, 0, 5), sized(2, 5, 0)) < 0, 'the same size split otherwise: lower pid first');
  assert.ok(compareByMemoryDescending(sized(2, 5, 0), sized(1, 0, 5)) > 0);
});
