import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareByRssDescending, topProcesses, treeRssBytes, type TreeProcess } from '../../src/policy/memory-sample.js';

const MiB = 1024 * 1024;
const proc = (pid: number, rssMiB: number, isWorkerMain = false): TreeProcess => ({
  pid,
  comm: `p${pid}`,
  rssBytes: rssMiB * MiB,
  isWorkerMain,
});

test('the tree RSS is the sum of every process, the main one included', () => {
  assert.equal(treeRssBytes([proc(1, 100, true), proc(2, 50), proc(3, 25)]), 175 * MiB);
});

test('an empty tree has zero RSS', () => {
  assert.equal(treeRssBytes([]), 0);
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

test('the comparison puts larger RSS first and breaks ties by lower pid', () => {
  assert.ok(compareByRssDescending({ pid: 9, rssBytes: 2 }, { pid: 1, rssBytes: 1 }) < 0);
  assert.ok(compareByRssDescending({ pid: 1, rssBytes: 1 }, { pid: 9, rssBytes: 2 }) > 0);
  assert.ok(compareByRssDescending({ pid: 1, rssBytes: 5 }, { pid: 2, rssBytes: 5 }) < 0);
  assert.equal(compareByRssDescending({ pid: 4, rssBytes: 5 }, { pid: 4, rssBytes: 5 }), 0);
});
