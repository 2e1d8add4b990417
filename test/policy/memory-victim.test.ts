import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickVictim } from '../../src/policy/memory-victim.js';
import type { CandidateProcess, TreeProcess } from '../../src/policy/memory-sample.js';

const MiB = 1024 * 1024;
const THRESHOLD = 500 * MiB;
const config = { node_kill_threshold_bytes: THRESHOLD };
// swapBytes defaults to 0: every case written before swap counted keeps its verdict unchanged.
const inTree = (pid: number, rssBytes: number, isWorkerMain = false, swapBytes = 0): TreeProcess => ({
  pid, comm: isWorkerMain ? 'node-main' : `tree${pid}`, rssBytes, swapBytes, isWorkerMain,
});
const outside = (pid: number, rssBytes: number, swapBytes = 0): CandidateProcess => ({ pid, comm: `hog${pid}`, rssBytes, swapBytes });

const cases: { name: string; tree: TreeProcess[]; extra: CandidateProcess[]; victim: number | null }[] = [
  {
    name: 'the largest tree process above the threshold is chosen',
    tree: [inTree(10, 100 * MiB, true), inTree(11, 600 * MiB), inTree(12, 900 * MiB), inTree(13, 700 * MiB)],
    extra: [],
    victim: 12,
  },
  {
    name: 'the worker main process is never chosen, even when it is the largest',
    tree: [inTree(10, 4000 * MiB, true), inTree(11, 600 * MiB)],
    extra: [],
    victim: 11,
  },
  {
    name: 'a tree whose only big process is the main one has no victim',
    tree: [inTree(10, 4000 * MiB, true), inTree(11, 100 * MiB)],
    extra: [],
    victim: null,
  },
  {
    name: 'no process above the threshold means no victim',
    tree: [inTree(10, 100 * MiB, true), inTree(11, 400 * MiB)],
    extra: [outside(50, 499 * MiB)],
    victim: null,
  },
  {
    name: 'a process exactly at the threshold is not a victim',
    tree: [inTree(11, THRESHOLD)],
    extra: [],
    victim: null,
  },
  {
    name: 'one byte above the threshold is a victim',
    tree: [inTree(11, THRESHOLD + 1)],
    extra: [],
    victim: 11,
  },
  {
    name: 'equal RSS goes to the lower pid whatever the input order',
    tree: [inTree(30, 800 * MiB), inTree(20, 800 * MiB), inTree(25, 800 * MiB)],
    extra: [],
    victim: 20,
  },
  {
    name: 'an extra candidate larger than any tree process is chosen',
    tree: [inTree(11, 600 * MiB)],
    extra: [outside(50, 700 * MiB), outside(51, 650 * MiB)],
    victim: 50,
  },
  {
    name: 'extra candidates alone can supply the victim',
    tree: [inTree(10, 100 * MiB, true)],
    extra: [outside(51, 650 * MiB)],
    victim: 51,
  },
  {
    name: 'a tie between the tree and an extra candidate goes to the lower pid',
    tree: [inTree(70, 800 * MiB)],
    extra: [outside(60, 800 * MiB)],
    victim: 60,
  },
  { name: 'an empty tree and no candidates give no victim', tree: [], extra: [], victim: null },
  // Swap counts with RSS, for the threshold and for the order.
  {
    name: 'a process mostly swapped out is the largest by RSS + swap, though the smallest by RSS',
    tree: [inTree(10, 100 * MiB, true), inTree(11, 900 * MiB), inTree(12, 50 * MiB, false, 6000 * MiB)],
    extra: [],
    victim: 12,
  },
  {
    name: 'a swap-only giant (no RSS at all) is a victim',
    tree: [inTree(11, 0, false, 7000 * MiB), inTree(12, 400 * MiB)],
    extra: [],
    victim: 11,
  },
  {
    name: 'RSS under the threshold with swap taking it over makes a victim',
    tree: [inTree(11, 300 * MiB, false, 300 * MiB)],
    extra: [],
    victim: 11,
  },
  {
    name: 'RSS + swap exactly at the threshold is not a victim',
    tree: [inTree(11, THRESHOLD - 64 * MiB, false, 64 * MiB)],
    extra: [],
    victim: null,
  },
  {
    name: 'RSS + swap one byte above the threshold is a victim',
    tree: [inTree(11, THRESHOLD - 64 * MiB, false, 64 * MiB + 1)],
    extra: [],
    victim: 11,
  },
  {
    name: 'equal RSS + swap split differently goes to the lower pid',
    tree: [inTree(30, 800 * MiB), inTree(20, 100 * MiB, false, 700 * MiB), inTree(25, 0, false, 800 * MiB)],
    extra: [],
    victim: 20,
  },
  {
    name: 'equal RSS, the one with more swap is larger',
    tree: [inTree(20, 800 * MiB), inTree(30, 800 * MiB, false, 1)],
    extra: [],
    victim: 30,
  },
  {
    name: 'the worker main process is never chosen, however much of it is swapped out',
    tree: [inTree(10, 100 * MiB, true, 8000 * MiB), inTree(11, 600 * MiB)],
    extra: [],
    victim: 11,
  },
  {
    name: 'an extra candidate with swap outweighs a tree process with more RSS',
    tree: [inTree(11, 900 * MiB)],
    extra: [outside(50, 200 * MiB, 800 * MiB)],
    victim: 50,
  },
];
for (const c of cases) {
  test(c.name, () => {
    assert.equal(pickVictim(c.tree, c.extra, config)?.pid ?? null, c.victim);
    assert.equal(pickVictim([...c.tree].reverse(), [...c.extra].reverse(), config)?.pid ?? null, c.victim);
  });
}

test('the victim carries only pid, comm, rssBytes and swapBytes', () => {
  assert.deepEqual(pickVictim([inTree(11, 600 * MiB)], [], config), { pid: 11, comm: 'tree11', rssBytes: 600 * MiB, swapBytes: 0 });
  assert.deepEqual(pickVictim([inTree(11, 60 * MiB, false, 700 * MiB)], [], config), { pid: 11, comm: 'tree11', rssBytes: 60 * MiB, swapBytes: 700 * MiB });
});
