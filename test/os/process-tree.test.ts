import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { findTree, protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import {
  killGroup,
  killSeen,
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
    identity = { rootPid: r.worker, pgid: r.worker, instanceId, uid, protectedPids: protectedPidsOf(table, process.pid) };
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
    assert.deepEqual(pidsOf({ ...identity, rootPid: null, pgid: null }), all);
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
    const identity = { rootPid: worker.pid!, pgid: worker.pid!, instanceId, uid, protectedPids: protectedPidsOf(table, process.pid) };
    assert.deepEqual(pidsOf(identity), sorted([worker.pid!, pid]));
    assert.deepEqual(pidsOf({ ...identity, pgid: null }), sorted([worker.pid!, pid]), 'from rootPid alone');
    assert.deepEqual(pidsOf({ ...identity, rootPid: null, pgid: null, instanceId: 'no-such-instance' }), [], 'nothing links them');
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
  const identity: TreeIdentity = { rootPid: null, pgid: null, instanceId: 'fake', uid: 1000, protectedPids: new Set() };

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
