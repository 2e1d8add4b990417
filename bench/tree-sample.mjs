#!/usr/bin/env node
// A tree sample for trees of 1, 20 and 200 processes on a machine with ~1000 extra `sleep`s (#18:
// a tree sample is O(tree)). Today's samplers (before #18): TreeTracker.sample() as the memory guard
// calls it (incremental: lists /proc and reads the members' and new pids' stat; a full scan every
// 5 s), its full scan, and a fresh findTree() (what a stop and an exit's tree clearing do). Beside
// them, as a yardstick for O(tree): a walk of /proc/<pid>/task/<tid>/children from the root,
// reading each member's stat, written here in plain JS.
// Usage: npm run build && node bench/tree-sample.mjs [samples=300]   BENCH_SLEEPERS (1000)
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ProcTable } from '../dist/src/os/proc-table.js';
import { findTree, protectedPidsOf } from '../dist/src/os/process-tree.js';
import { TreeTracker } from '../dist/src/os/tree-tracker.js';
import { neutralEnv } from './pm2.mjs';
import { loadAverage, median, processCount, quantile, signal, startSleepers, waitFor } from './processes.mjs';

const SAMPLES = Number(process.argv[2] ?? 300);
const SLEEPERS = Number(process.env.BENCH_SLEEPERS ?? 1000);
const SIZES = [1, 20, 200];
const table = new ProcTable();

/** A tree of `size`: a detached sh (group and marker of its own) with size - 1 sleeping children. */
async function startTree(size, instanceId) {
  const script = size === 1 ? 'exec sleep 1000' : `i=1; while [ $i -lt ${size} ]; do sleep 1000 & i=$((i+1)); done; wait`;
  const root = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore', env: { ...neutralEnv(), AUTOPILOTD_INSTANCE: instanceId } });
  const exited = new Promise((resolve) => root.once('exit', resolve));
  await waitFor(`a tree of ${size}`, () => table.scan().filter((p) => p.pgid === root.pid && p.state !== 'Z').length === size, 30_000);
  const identity = {
    root: { pid: root.pid, startTimeTicks: table.read(root.pid).startTimeTicks },
    pgid: root.pid,
    instanceId,
    uid: process.getuid(),
    protectedPids: protectedPidsOf(table, process.pid),
  };
  return {
    identity,
    stop: async () => {
      signal(-root.pid, 'SIGKILL');
      await exited;
    },
  };
}

function childrenWalk(rootPid) {
  const members = [];
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop();
    try {
      members.push(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c !== '') stack.push(Number(c));
      }
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

function timeEach(n, fn) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn(i);
    ms.push(performance.now() - t);
  }
  return ms;
}

function expectSize(size, got, what) {
  if (got !== size) throw new Error(`${what} found ${got} members, expected ${size}`);
}

async function measure(size) {
  const tree = await startTree(size, `bench-tree-sample-${process.pid}-${size}`);
  try {
    const tracker = new TreeTracker(table);
    let nowMs = 0;
    tracker.sample(tree.identity, nowMs); // the first (full) sample reads every environ once
    const incremental = timeEach(SAMPLES, () => {
      const s = tracker.sample(tree.identity, ++nowMs);
      expectSize(size, s.members.length, 'TreeTracker.sample()');
    });
    const full = timeEach(Math.min(SAMPLES, 100), () => {
      nowMs += 10_000;
      const s = tracker.sample(tree.identity, nowMs);
      if (!s.full) throw new Error('expected a full sample');
      expectSize(size, s.members.length, 'TreeTracker.sample() (full)');
    });
    const fresh = timeEach(Math.min(SAMPLES, 50), () => expectSize(size, findTree(table, tree.identity, table.scan(), { fresh: true }).length, 'findTree()'));
    const walk = timeEach(SAMPLES, () => expectSize(size, childrenWalk(tree.identity.root.pid).length, 'children walk'));
    return { size, incremental, full, fresh, walk };
  } finally {
    await tree.stop();
  }
}

const sleepers = SLEEPERS > 0 ? await startSleepers(SLEEPERS, neutralEnv()) : null;
try {
  console.log(`processes visible: ${processCount()} (${SLEEPERS} extra sleepers); load average ${loadAverage()}`);
  const rows = [];
  for (const size of SIZES) rows.push(await measure(size));
  const cell = (ms) => `${median(ms).toFixed(3)} / ${quantile(ms, 0.95).toFixed(3)}`;
  console.log('\n| tree size | TreeTracker.sample() incremental | its full scan (every 5 s) | findTree() fresh (stop, exit) | children walk (O(tree) yardstick) |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.size} | ${cell(r.incremental)} | ${cell(r.full)} | ${cell(r.fresh)} | ${cell(r.walk)} |`);
  console.log('\nms, median / p95 of each column\'s samples.');
} finally {
  await sleepers?.stop();
}
