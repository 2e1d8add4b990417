import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickVictim } from '../../src/policy/memory-victim.js';
import type { CandidateProcess, TreeProcess } from '../../src/policy/memory-sample.js';

const MiB = 1024 * 1024;
const THRESHOLD = 500 * MiB;
const config = { node_kill_threshold_bytes: THRESHOLD };
const inTree = (pid: number, rssBytes: number, isWorkerMain = false): TreeProcess => ({
  pid, comm: isWorkerMain ? 'node-main' : `tree${pid}`, rssBytes, isWorkerMain,
});
const outside = (pid: number, rssBytes: number): CandidateProcess => ({ pid, comm: `hog${pid}`, rssBytes });

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
];
for (const c of cases) {
  test(c.name, () => {
    assert.equal(pickVictim(c.tree, c.extra, config)?.pid ?? null, c.victim);
    assert.equal(pickVictim([...c.tree].reverse(), [...c.extra].reverse(), config)?.pid ?? null, c.victim);
  });
}

test('the victim carries only pid, comm and rssBytes', () => {
  const victim = pickVictim([inTree(11, 600 * MiB)], [], config);
  assert.deepEqual(victim, { pid: 11, comm: 'tree11', rssBytes: 600 * MiB });
});
