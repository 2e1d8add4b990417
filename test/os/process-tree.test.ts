import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { findTree, protectedPidsOf, refineIdentity, traceTree, type TreeIdentity } from '../../src/os/process-tree.js';
import {
  killGroup,
  killSeen,
  processKey,
  see,
  startBystander,
  startFixture,
  statOf,
  uniqueInstanceId,
  waitFor,
  type Seen,
  type StartedFixture,
} from './live-processes.js';
import type { TreeReport } from '../helpers/daemon.js';


const table = new ProcTable();
const uid = process.getuid!();
const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);
const pidsOf = (identity: TreeIdentity): number[] => sorted(findTree(table, identity).map((p) => p.pid));

describe('findTree on a real worker tree', () => {
  const instanceId = uniqueInstanceId('process-tree');
  let fixture: StartedFixture<TreeReport> | undefined;
  let report: TreeReport;
  let all: number[];
  let identity: TreeIdentity;

  before(async () => {
    fixture = await startFixture<TreeReport>('tree-worker.sh', instanceId);
    const r = fixture.report;
    report = r;
    all = sorted([r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer]);
    identity = { root: processKey(r.worker), pgid: r.worker, instanceId, uid, protectedPids: protectedPidsOf(table, process.pid) };
    // The fixture reports pids before the last `sleep` children may have finished exec'ing.
    await waitFor(() => all.every((pid) => statOf(pid)?.comm === 'sleep' || pid === r.worker || pid === r.setsidParent), 'every fixture process to be running its final program');
  });
  after(async () => {
    await fixture?.cleanup([fixture.report.setsid, fixture.report.daemon]);
  });

  test('the fixture has the shapes it claims: a setsid escapee and a daemon reparented out of group, session and ancestry', () => {
    const r = report;
    const setsid = statOf(r.setsid);
    const daemon = statOf(r.daemon);
    assert.ok(setsid && daemon);
    assert.equal(setsid.sid, r.setsid);
    assert.equal(setsid.ppid, r.setsidParent);
    assert.notEqual(daemon.pgid, r.worker);
    assert.notEqual(daemon.sid, r.worker);
    assert.notEqual(daemon.ppid, r.worker);
    assert.ok(!all.includes(daemon.ppid), 'the daemon’s parent is no fixture process');
  });

  test('finds exactly the group members, the setsid escapee and the double-forked daemon', () => {
    assert.deepEqual(pidsOf(identity), all);
  });

  test('finds the double-forked daemon only through its environment marker', () => {
    const found = pidsOf({ ...identity, instanceId: `${instanceId}-not-this-one` });
    assert.ok(!found.includes(report.daemon), 'daemon found without its marker');
    assert.deepEqual(found, all.filter((pid) => pid !== report.daemon));
  });

  test('finds the tree by the marker alone once the worker and its group are unknown', () => {
    assert.deepEqual(pidsOf({ ...identity, root: null, pgid: null }), all);
  });

  test('does not return a same-user process outside the tree, nor this test process', async () => {
    const bystander = startBystander();
    try {
      const found = pidsOf(identity);
      assert.ok(!found.includes(bystander.seen.pid), 'bystander returned');
      assert.ok(!found.includes(process.pid), 'test process returned');
      assert.deepEqual(found, all);
    } finally {
      await bystander.stop();
    }
  });

  test('never returns a protected pid, even one in the worker’s group', () => {
    const protectedChild = report.children[0]!;
    const found = pidsOf({ ...identity, protectedPids: new Set([...identity.protectedPids, protectedChild]) });
    assert.deepEqual(found, all.filter((pid) => pid !== protectedChild));
  });

  test('as root, leaves out a process of another uid that carries the same marker', async (t) => {
    if (uid !== 0) {
      t.skip('needs root to start a process as another user');
      return;
    }
    const other = spawn('sleep', ['1000'], {
      uid: 65534,
      gid: 65534,
      cwd: '/',
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId },
    });
    const exited = once(other, 'exit');
    try {
      const pid = other.pid!;
      assert.equal(table.uidOf(pid), 65534);
      assert.equal(table.hasEnvMarker(pid, 'AUTOPILOTD_INSTANCE', instanceId), true, 'the marker is there to be matched');
      assert.deepEqual(pidsOf(identity), all);
    } finally {
      killGroup(other.pid!);
      await exited;
    }
  });
});

test('findTree follows ancestry to a descendant that left the group and dropped the marker', async () => {
  const instanceId = uniqueInstanceId('process-tree-ancestry');
  // The child calls setsid and exec's with an empty environment: only its parent links it to the worker.
  const worker = spawn('sh', ['-c', 'setsid env -i sleep 1000 & echo $!; wait'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId },
  });
  const exited = once(worker, 'exit');
  let escapee: Seen | undefined;
  try {
    const [line] = (await once(worker.stdout!, 'data')) as [Buffer];
    const pid = Number(line.toString().trim());
    escapee = see(pid);
    await waitFor(() => statOf(pid)?.comm === 'sleep', 'the escapee to exec sleep');
    assert.equal(statOf(pid)?.sid, pid);
    assert.equal(table.hasEnvMarker(pid, 'AUTOPILOTD_INSTANCE', instanceId), false);
    const identity = { root: processKey(worker.pid!), pgid: worker.pid!, instanceId, uid, protectedPids: protectedPidsOf(table, process.pid) };
    assert.deepEqual(pidsOf(identity), sorted([worker.pid!, pid]));
    assert.deepEqual(pidsOf({ ...identity, pgid: null }), sorted([worker.pid!, pid]), 'from the root alone');
    assert.deepEqual(pidsOf({ ...identity, root: null, pgid: null, instanceId: 'no-such-instance' }), [], 'nothing links them');
  } finally {
    if (escapee !== undefined) killSeen(escapee);
    killGroup(worker.pid!);
    worker.stdout!.destroy();
    await exited;
  }
});

test('protectedPidsOf holds this process and each ancestor up to the top of the pid namespace', () => {
  const pids = protectedPidsOf(table, process.pid);
  assert.ok(pids.has(process.pid));
  assert.ok(pids.has(process.ppid));
  assert.ok(pids.has(1), 'the chain ends at init');
  for (const pid of pids) {
    const ppid = statOf(pid)?.ppid;
    assert.ok(ppid === 0 || (ppid !== undefined && pids.has(ppid)), `parent ${ppid} of ${pid} is in the set`);
  }
});

describe('findTree caching, on a fake /proc', () => {
  // Pid reuse and an environment changing under a known process cannot be staged on the real /proc.
  const root = mkdtempSync(join(tmpdir(), 'autopilotd-fakeproc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const write = (pid: number, startTimeTicks: number, environ: string): void => {
    mkdirSync(join(root, String(pid)), { recursive: true });
    const fields = ['S', 1, pid, pid, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, startTimeTicks, 0, 10, 0];
    writeFileSync(join(root, `${pid}/stat`), `${pid} (p) ${fields.join(' ')}\n`);
    writeFileSync(join(root, `${pid}/status`), `Name:\tp\nUid:\t1000\t1000\t1000\t1000\n`);
    writeFileSync(join(root, `${pid}/environ`), environ);
  };
  const identity: TreeIdentity = { root: null, pgid: null, instanceId: 'fake', uid: 1000, protectedPids: new Set() };

  test('reads each process’s environment once in its life, and again for a new process with the same pid', () => {
    const fakeTable = new ProcTable(root);
    write(300, 5000, 'AUTOPILOTD_INSTANCE=fake\0');
    assert.deepEqual(findTree(fakeTable, identity).map((p) => p.pid), [300]);
    write(300, 5000, 'OTHER=1\0'); // same process: the verdict is kept, its environ not read again
    assert.deepEqual(findTree(fakeTable, identity).map((p) => p.pid), [300]);
    write(300, 6000, 'OTHER=1\0'); // pid reused by a new process: read afresh
    assert.deepEqual(findTree(fakeTable, identity).map((p) => p.pid), []);
    rmSync(join(root, '300'), { recursive: true });
    assert.deepEqual(findTree(fakeTable, identity), []); // gone: its facts are dropped
    write(300, 6000, 'AUTOPILOTD_INSTANCE=fake\0'); // kept facts would still say "unmarked"
    assert.deepEqual(findTree(fakeTable, identity).map((p) => p.pid), [300]);
  });
});

interface FakeProcess {
  pid: number;
  ppid?: number;
  pgid?: number;
  sid?: number;
  startTimeTicks?: number;
  state?: string;
  uid?: number;
  /** The raw environ; marked (AUTOPILOTD_INSTANCE=fake) by default. null: no environ file (unreadable). */
  environ?: string | null;
  kernelThread?: boolean;
}

/** A fresh fake /proc under `root`; `add` writes (or rewrites) one process, `remove` ends it. */
function fakeProcAt(root: string): { table: ProcTable; add: (p: FakeProcess) => void; remove: (pid: number) => void } {
  const dir = mkdtempSync(join(root, 'proc-'));
  return {
    table: new ProcTable(dir),
    add: (p) => {
      rmSync(join(dir, String(p.pid)), { recursive: true, force: true });
      mkdirSync(join(dir, String(p.pid)));
      const flags = p.kernelThread === true ? 0x208040 : 0x400100;
      const fields = [p.state ?? 'S', p.ppid ?? 1, p.pgid ?? p.pid, p.sid ?? p.pid, 0, -1, flags, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, p.startTimeTicks ?? 1000, 0, 10, 0];
      writeFileSync(join(dir, `${p.pid}/stat`), `${p.pid} (p) ${fields.join(' ')}\n`);
      writeFileSync(join(dir, `${p.pid}/status`), `Name:\tp\nUid:\t${p.uid ?? 1000}\t0\t0\t0\n`);
      const environ = p.environ === undefined ? 'AUTOPILOTD_INSTANCE=fake\0' : p.environ;
      if (environ !== null) writeFileSync(join(dir, `${p.pid}/environ`), environ);
    },
    remove: (pid) => rmSync(join(dir, String(pid)), { recursive: true }),
  };
}

describe('the worker identified by pid and start time, on a fake /proc (#14)', () => {
  // Pid reuse cannot be staged on the real /proc without root; these stage each case exactly.
  const root = mkdtempSync(join(tmpdir(), 'autopilotd-fakeproc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const unmarked = 'OTHER=1\0';
  const identity: TreeIdentity = { root: { pid: 100, startTimeTicks: 1000 }, pgid: 100, instanceId: 'fake', uid: 1000, protectedPids: new Set([1]) };
  const pidsIn = (members: { pid: number }[]): number[] => sorted(members.map((p) => p.pid));

  test('a process on the worker’s pid with another start time is not the root, and its children are not followed', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 1, ppid: 0, environ: unmarked });
    // The worker exited and was reaped; a bystander got its pid, in a session of its own...
    fake.add({ pid: 100, ppid: 1, pgid: 50, sid: 50, startTimeTicks: 2000, environ: unmarked });
    fake.add({ pid: 101, ppid: 100, pgid: 50, sid: 50, startTimeTicks: 2001, environ: unmarked });
    assert.deepEqual(pidsIn(findTree(fake.table, identity)), []);
    // ...but the same process with the worker's start time is the worker, with its children.
    fake.add({ pid: 100, ppid: 1, pgid: 50, sid: 50, startTimeTicks: 1000, environ: unmarked });
    assert.deepEqual(pidsIn(findTree(fake.table, identity)), [100, 101]);
  });

  test('the group is trusted while the worker holds its pid, a zombie included', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 1, ppid: 0, environ: unmarked });
    fake.add({ pid: 100, ppid: 1, state: 'Z', environ: '' });
    fake.add({ pid: 102, ppid: 1, pgid: 100, sid: 100, startTimeTicks: 1500, environ: unmarked }); // orphaned, scrubbed environment
    const traced = traceTree(fake.table, identity, fake.table.scan(), { wholeScan: true });
    assert.deepEqual(pidsIn(traced.members), [102]);
    assert.equal(traced.identity.pgid, 100);
  });

  test('once the worker is gone, a process holding its pid proves its group id reused: the group is dropped for good', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 1, ppid: 0, environ: unmarked });
    // A bystander got the pid and called setsid: its group and session have the worker's number.
    fake.add({ pid: 100, ppid: 1, pgid: 100, sid: 100, startTimeTicks: 2000, environ: unmarked });
    fake.add({ pid: 103, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2001, environ: unmarked });
    const first = traceTree(fake.table, identity, fake.table.scan(), { wholeScan: true });
    assert.deepEqual(pidsIn(first.members), []);
    assert.deepEqual({ root: first.identity.root, pgid: first.identity.pgid }, { root: null, pgid: null });
    // Dropped for good: a later look with the refined identity does not take the group back.
    fake.remove(100);
    assert.deepEqual(pidsIn(traceTree(fake.table, first.identity, fake.table.scan(), { wholeScan: true, previous: first.members }).members), []);
  });

  test('from one look to the next the group id stays trusted only through a member that held it all along', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 1, ppid: 0, environ: unmarked });
    fake.add({ pid: 100, ppid: 1, environ: unmarked });
    fake.add({ pid: 101, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 1100, environ: unmarked });
    const look1 = traceTree(fake.table, identity, fake.table.scan(), { wholeScan: true });
    assert.deepEqual(pidsIn(look1.members), [100, 101]);
    // The worker exits and is reaped; its child, in its group, holds the number.
    fake.remove(100);
    fake.add({ pid: 101, ppid: 1, pgid: 100, sid: 100, startTimeTicks: 1100, environ: unmarked });
    const look2 = traceTree(fake.table, look1.identity, fake.table.scan(), { wholeScan: true, previous: look1.members });
    assert.deepEqual(pidsIn(look2.members), [101]);
    assert.equal(look2.identity.pgid, 100);
    // The child exits too: the group is empty and its number free. A bystander took it, led a new
    // session, forked and exited: no process has the pid, but its child is in that group.
    fake.remove(101);
    fake.add({ pid: 104, ppid: 1, pgid: 100, sid: 100, startTimeTicks: 3000, environ: unmarked });
    const look3 = traceTree(fake.table, look2.identity, fake.table.scan(), { wholeScan: true, previous: look2.members });
    assert.deepEqual(pidsIn(look3.members), []);
    assert.equal(look3.identity.pgid, null);
    // Without the previous look, nothing in this scan alone shows the reuse.
    assert.deepEqual(pidsIn(findTree(fake.table, { ...identity, root: null })), [104]);
  });

  test('refineIdentity returns the same object when nothing changed', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 100, ppid: 1, environ: unmarked });
    assert.equal(refineIdentity(identity, fake.table.scan(), []), identity);
  });
});

describe('environment marker verdicts, on a fake /proc (#14)', () => {
  const root = mkdtempSync(join(tmpdir(), 'autopilotd-fakeproc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const identity: TreeIdentity = { root: null, pgid: null, instanceId: 'fake', uid: 1000, protectedPids: new Set([1]) };
  const pidsOfTree = (table: ProcTable, opts: { fresh?: boolean } = {}): number[] => sorted(findTree(table, identity, table.scan(), opts).map((p) => p.pid));

  test('an empty environ (a read during execve) is no verdict: the next look reads it again and finds the marker', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 300, environ: '' });
    const traced = traceTree(fake.table, identity, fake.table.scan(), { wholeScan: true });
    assert.deepEqual(traced.members, []);
    assert.deepEqual(traced.undecided.map((p) => p.pid), [300], 'reported as undecided');
    fake.add({ pid: 300, environ: 'AUTOPILOTD_INSTANCE=fake\0' }); // same process: the execve is done
    assert.deepEqual(pidsOfTree(fake.table), [300]);
  });

  test('an unreadable environ of our uid is no verdict either', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 301, environ: null });
    assert.deepEqual(pidsOfTree(fake.table), []);
    fake.add({ pid: 301 });
    assert.deepEqual(pidsOfTree(fake.table), [301]);
  });

  test('another uid’s empty environ is kept as a verdict, and is not undecided: it is never a member', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 302, uid: 0, environ: '' });
    const traced = traceTree(fake.table, identity, fake.table.scan(), { wholeScan: true });
    assert.deepEqual([traced.members, traced.undecided], [[], []]);
  });

  test('a marked verdict is kept for the process’s life; an unmarked one too, except by a fresh look', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 303 });
    fake.add({ pid: 304, environ: 'OTHER=1\0' });
    assert.deepEqual(pidsOfTree(fake.table), [303]);
    // Both exec with the other's environment (the start time stays).
    fake.add({ pid: 303, environ: 'OTHER=1\0' });
    fake.add({ pid: 304 });
    assert.deepEqual(pidsOfTree(fake.table), [303], 'cached verdicts');
    assert.deepEqual(pidsOfTree(fake.table, { fresh: true }), [303, 304], 'a fresh look reads the unmarked again, and keeps the marked');
  });

  test('a kernel thread is never a member, nor undecided, whatever its environ shows', () => {
    const fake = fakeProcAt(root);
    fake.add({ pid: 2, ppid: 0, pgid: 0, sid: 0, kernelThread: true });
    fake.add({ pid: 305, ppid: 2, pgid: 0, sid: 0, kernelThread: true, environ: '' });
    const traced = traceTree(fake.table, identity, fake.table.scan(), { wholeScan: true, fresh: true });
    assert.deepEqual([traced.members, traced.undecided], [[], []]);
  });
});
