// The daemon's cgroup leaves on the real cgroup v2 hierarchy (as root; this machine mounts it at
// /sys/fs/cgroup/unified, without controllers). The "daemon" is this test process where the
// daemon's own moves matter (spawnInto), or a `sleep` child standing in for another daemon.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test, type TestContext } from 'node:test';
import { cgroupProcs, isPopulated, killCgroup, moveProcess } from '../../src/os/cgroup-leaf.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { privateDirPrefix, WorkerCgroups, type WorkerCgroupsOptions } from '../../src/os/worker-cgroups.js';
import { cgroupOfPid, realCgroupUnavailable, removeCgroupDir, testCgroupBase } from '../helpers/cgroup.js';
import { waitFor } from '../helpers/wait.js';

const table = new ProcTable();
const problems: string[] = [];

function options(base: string, instanceKey: string, pid = process.pid): WorkerCgroupsOptions {
  return {
    base, instanceKey, pid, startTicks: table.read(pid)!.startTimeTicks,
    isRunning: (p, ticks) => table.read(p)?.startTimeTicks === ticks && table.read(p)?.state !== 'Z',
    onProblem: (message) => problems.push(message),
  };
}

function skipUnlessReal(t: TestContext): string | null {
  const why = realCgroupUnavailable();
  if (why !== null) t.skip(why);
  return why === null ? testCgroupBase() : null;
}

async function sleeper(t: TestContext): Promise<ChildProcess> {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await once(child, 'spawn');
  return child;
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

const sorted = (pids: number[]): number[] => [...pids].sort((x, y) => x - y);
const key = (label: string): string => `/tmp/apdtest-${label}-${process.pid}.pid`;

test('in a shared cgroup the daemon makes a private directory named by instance, pid and start time, and leaves it at dispose', (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  assert.ok(cgroupProcs(base).length > 1, 'the test runner shares its cgroup');
  const cgroups = WorkerCgroups.open(options(base, key('shared')));
  try {
    assert.equal(cgroups.privateHome, true);
    assert.equal(basename(cgroups.home), `${privateDirPrefix(key('shared'))}${process.pid}-${table.read(process.pid)!.startTimeTicks}`);
    assert.equal(cgroupOfPid(process.pid), join(cgroups.home, 'daemon'));
    assert.equal(cgroups.memory, false, 'no controllers on this hybrid layout');
  } finally {
    cgroups.dispose();
  }
  assert.equal(cgroupOfPid(process.pid), base, 'back where it came from');
  assert.ok(!existsSync(cgroups.home), 'the private directory is gone');
});

test('spawnInto is exact: the child is born in the leaf (its first read of its cgroup, and a fork at once, are there); the daemon is back right after', async (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  const cgroups = WorkerCgroups.open(options(base, key('spawn')));
  t.after(() => cgroups.dispose());
  const leaf = cgroups.createLeaf(1);
  t.after(async () => {
    if (isPopulated(leaf)) killCgroup(leaf);
    await waitFor('the leaf to empty', () => !isPopulated(leaf));
  });
  for (let i = 0; i < 3; i++) {
    const { result: child, inLeaf } = cgroups.spawnInto(leaf, () => spawn('sh', ['-c', 'cat /proc/self/cgroup; sleep 1000 & echo "child $!"; wait'], { stdio: ['ignore', 'pipe', 'ignore'] }));
    assert.equal(inLeaf, true);
    assert.equal(cgroupOfPid(process.pid), cgroups.daemonLeaf, 'the daemon went back to its leaf');
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c));
    const grandchild = Number(await waitFor(() => `the child to report its cgroup and its child: ${out}`, () => /^child (\d+)$/m.exec(out)?.[1]));
    const firstSeen = /^0::(.*)$/m.exec(out)![1]!;
    assert.ok(leaf.endsWith(firstSeen), `child saw ${firstSeen}, leaf is ${leaf}`);
    assert.deepEqual(sorted(cgroupProcs(leaf)), sorted([child.pid!, grandchild]));
    const exited = once(child, 'exit');
    killCgroup(leaf);
    await exited;
    await waitFor('the leaf to empty', () => !isPopulated(leaf));
  }
  assert.ok(cgroups.removeLeaf(leaf));
});

test('the cost of spawning into a leaf: two moves of the daemon, measured', (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  const cgroups = WorkerCgroups.open(options(base, key('cost')));
  t.after(() => cgroups.dispose());
  const leaf = cgroups.createLeaf(1);
  const pairs: number[] = [];
  for (let i = 0; i < 50; i++) {
    const started = performance.now();
    cgroups.spawnInto(leaf, () => null);
    pairs.push(performance.now() - started);
  }
  pairs.sort((a, b) => a - b);
  t.diagnostic(`move into the leaf and back (${pairs.length} times), ms: median ${pairs[25]!.toFixed(3)}, max ${pairs.at(-1)!.toFixed(3)}`);
  assert.ok(cgroups.removeLeaf(leaf));
});

test('two daemons at once never share a directory or a leaf, not even of the same instance (a lost lock file)', async (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  const other = await sleeper(t);
  const a = WorkerCgroups.open(options(base, key('two')));
  t.after(() => a.dispose());
  const b = WorkerCgroups.open(options(base, key('two'), other.pid!));
  t.after(async () => {
    await killAndWait(other);
    await removeCgroupDir(b.home);
  });
  const c = WorkerCgroups.open(options(base, key('two-other')));
  t.after(() => c.dispose());
  assert.equal(new Set([a.home, b.home, c.home]).size, 3);
  assert.notEqual(a.createLeaf(1), b.createLeaf(1));
  assert.deepEqual(cgroupProcs(b.daemonLeaf), [other.pid]);
  // b's creator runs: a, of the same instance, does not take b's directory for a leftover.
  assert.deepEqual(a.leftovers(), []);
});

test('a predecessor killed with SIGKILL: its directory and populated leaf are the successor\'s leftovers; empty ones of other instances are removed', async (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  const predecessor = await sleeper(t);
  const orphan = await sleeper(t);
  const old = WorkerCgroups.open(options(base, key('succ'), predecessor.pid!));
  t.after(() => removeCgroupDir(old.home));
  const oldLeaf = old.createLeaf(3);
  moveProcess(oldLeaf, orphan.pid!);
  // Another instance's dead daemon with nothing left in it, and one with an orphan still running.
  const otherDead = await sleeper(t);
  const otherEmpty = WorkerCgroups.open(options(base, key('succ-other'), otherDead.pid!));
  t.after(() => removeCgroupDir(otherEmpty.home));
  otherEmpty.createLeaf(1);
  const otherHeld = await sleeper(t);
  const otherOrphan = await sleeper(t);
  const otherFull = WorkerCgroups.open(options(base, key('succ-third'), otherHeld.pid!));
  t.after(async () => {
    await killAndWait(otherOrphan);
    await removeCgroupDir(otherFull.home);
  });
  moveProcess(otherFull.createLeaf(1), otherOrphan.pid!);
  for (const c of [predecessor, otherDead, otherHeld]) await killAndWait(c);

  const successor = WorkerCgroups.open(options(base, key('succ')));
  t.after(() => successor.dispose());
  const leftovers = successor.leftovers();
  assert.deepEqual(leftovers.map((l) => l.dir), [old.home]);
  assert.deepEqual(leftovers[0]!.leaves.sort(), [join(old.home, 'daemon'), oldLeaf].sort());
  assert.equal(successor.removeLeftover(leftovers[0]!), false, 'the populated leaf is kept until its tree is stopped');
  await killAndWait(orphan);
  await waitFor('the old leaf to empty', () => !isPopulated(oldLeaf));
  assert.equal(successor.removeLeftover(leftovers[0]!), true);
  assert.ok(!existsSync(old.home));

  // Other tests' dead daemons may be removed too: only ours are asserted.
  assert.ok(successor.removeEmptyOfOthers().includes(otherEmpty.home));
  assert.ok(!existsSync(otherEmpty.home));
  assert.ok(existsSync(otherFull.home), 'one still holding processes waits for its own instance');
});

test('an empty directory of a dead daemon that another successor removes first is skipped, and our start goes on', async (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  const dead = await sleeper(t);
  const other = WorkerCgroups.open(options(base, key('race-other'), dead.pid!));
  t.after(() => removeCgroupDir(other.home));
  other.createLeaf(1);
  await killAndWait(dead);
  // The other successor's removal lands between our listing of the base and our look at the
  // directory, as it did in CI: here it happens inside the liveness check of that very directory.
  const opts = options(base, key('race'));
  const successor = WorkerCgroups.open({
    ...opts,
    isRunning: (pid, ticks) => {
      if (pid === dead.pid && existsSync(other.home)) {
        for (const leaf of readdirSync(other.home, { withFileTypes: true }).filter((e) => e.isDirectory())) rmdirSync(join(other.home, leaf.name));
        rmdirSync(other.home);
      }
      return opts.isRunning(pid, ticks);
    },
  });
  t.after(() => successor.dispose());
  const before = problems.length;
  const removed = successor.removeEmptyOfOthers();
  assert.ok(!removed.includes(other.home), 'not ours to report: someone else removed it');
  assert.ok(!existsSync(other.home));
  assert.deepEqual(problems.slice(before).filter((p) => p.includes(other.home)), [], 'a directory that is gone is no problem');
});

test('alone in its cgroup (as under Delegate=yes) the daemon uses it directly: daemon and worker leaves right inside', async (t) => {
  const base = skipUnlessReal(t);
  if (base === null) return;
  const own = join(base, `apdtest-alone-${process.pid}`);
  mkdirSync(own);
  const daemon = await sleeper(t);
  t.after(async () => {
    await killAndWait(daemon);
    await removeCgroupDir(own);
  });
  moveProcess(own, daemon.pid!);
  const cgroups = WorkerCgroups.open(options(own, key('alone'), daemon.pid!));
  assert.equal(cgroups.privateHome, false);
  assert.equal(cgroups.home, own);
  assert.deepEqual(cgroupProcs(join(own, 'daemon')), [daemon.pid]);
  assert.equal(cgroups.createLeaf(1), join(own, 'worker-1'));
  cgroups.dispose();
  assert.deepEqual(readdirSync(own, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name), ['daemon'],
    'the worker leaf is removed; the daemon stays in its leaf until it exits');
});
