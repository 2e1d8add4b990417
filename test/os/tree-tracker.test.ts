import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { findTree, protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import { TreeTracker, type TreeSample } from '../../src/os/tree-tracker.js';
import { waitFor as waitForValue } from '../helpers/wait.js';
import {
  processKey,
  startBystander,
  startFixture,
  statOf,
  uniqueInstanceId,
  waitFor,
  type StartedFixture,
} from './live-processes.js';
import type { TreeReport } from '../helpers/daemon.js';


interface GrowingReport {
  worker: number;
  child: number;
}

const table = new ProcTable();
const uid = process.getuid!();
const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);
const pidsOf = (s: TreeSample): number[] => sorted(s.members.map((p) => p.pid));
const identityOf = (worker: number, instanceId: string): TreeIdentity => ({
  root: processKey(worker), pgid: worker, instanceId, uid, protectedPids: protectedPidsOf(table, process.pid),
});

/** Children of `ppid` that run `comm`, from /proc read directly, not through the code under test. */
function childrenOf(ppid: number, comm: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(Number(name));
    if (s !== null && s.ppid === ppid && s.comm === comm && s.state !== 'Z') pids.push(Number(name));
  }
  return pids;
}

describe('TreeTracker on a real worker tree', () => {
  const instanceId = uniqueInstanceId('tree-tracker');
  let fixture: StartedFixture<TreeReport> | undefined;
  let all: number[];
  let identity: TreeIdentity;

  before(async () => {
    fixture = await startFixture<TreeReport>('tree-worker.sh', instanceId);
    const r = fixture.report;
    all = sorted([r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer]);
    identity = identityOf(r.worker, instanceId);
    // The fixture reports pids before the last `sleep` children may have finished exec'ing.
    await waitFor(() => all.every((pid) => statOf(pid)?.comm === 'sleep' || pid === r.worker || pid === r.setsidParent), 'every fixture process to be running its final program');
  });
  after(async () => {
    await fixture?.cleanup([fixture.report.setsid, fixture.report.daemon]);
  });

  test('the first sample is a full scan finding what findTree finds: group children, setsid escapee and double-forked daemon', () => {
    const first = new TreeTracker(table).sample(identity, 0);
    assert.equal(first.full, true);
    assert.deepEqual(pidsOf(first), all);
    assert.deepEqual(pidsOf(first), sorted(findTree(table, identity).map((p) => p.pid)));
  });

  test('an incremental sample returns the same members, each with its stat read afresh', () => {
    const tracker = new TreeTracker(table);
    const first = tracker.sample(identity, 0);
    const next = tracker.sample(identity, 1);
    assert.equal(next.full, false);
    assert.deepEqual(pidsOf(next), all);
    for (const p of next.members) {
      assert.ok(!first.members.includes(p), `pid ${p.pid} is the object of the first sample, not a fresh read`);
      assert.equal(p.startTimeTicks, first.members.find((q) => q.pid === p.pid)?.startTimeTicks);
    }
  });

  test('never returns a same-user process outside the tree, started before or between samples, nor this process', async () => {
    const early = startBystander();
    const tracker = new TreeTracker(table);
    try {
      assert.deepEqual(pidsOf(tracker.sample(identity, 0)), all);
      const late = startBystander();
      try {
        const next = tracker.sample(identity, 1);
        assert.equal(next.full, false);
        assert.deepEqual(pidsOf(next), all, `bystanders ${early.seen.pid} and ${late.seen.pid} left out`);
        assert.ok(!pidsOf(next).includes(process.pid));
      } finally {
        await late.stop();
      }
    } finally {
      await early.stop();
    }
  });

  test('a full scan happens when the identity changes, after fullScanIntervalMs, and when time goes back', () => {
    const tracker = new TreeTracker(table, { fullScanIntervalMs: 1000 });
    const fullAt = (id: TreeIdentity, nowMs: number): boolean => tracker.sample(id, nowMs).full;
    assert.equal(fullAt(identity, 10_000), true, 'first sample');
    assert.equal(fullAt(identity, 10_999), false, 'within the interval');
    assert.equal(fullAt({ ...identity, protectedPids: new Set(identity.protectedPids) }, 10_999), false, 'an equal identity in new objects');
    assert.equal(fullAt(identity, 11_000), true, 'the interval has passed');
    assert.equal(fullAt(identity, 11_500), false);
    assert.equal(fullAt(identity, 10_500), true, 'time went back');
    assert.equal(fullAt({ ...identity, root: { ...identity.root!, startTimeTicks: identity.root!.startTimeTicks + 1 } }, 10_500), true, 'another process on the worker’s pid');
    assert.equal(fullAt(identity, 10_500), true);
    assert.equal(fullAt({ ...identity, root: null }, 10_501), true, 'the worker is gone');
    assert.equal(fullAt({ ...identity, root: null }, 10_502), false);
    assert.equal(fullAt({ ...identity, root: null, pgid: null }, 10_503), true, 'its group forgotten');
    assert.equal(fullAt(identity, 10_504), true, 'a new worker generation');
    assert.equal(fullAt({ ...identity, protectedPids: new Set([...identity.protectedPids, 1234567]) }, 10_505), true, 'other protected pids');

    const other = { ...identity, instanceId: `${instanceId}-not-this-one` };
    const renamed = tracker.sample(other, 10_506);
    assert.equal(renamed.full, true, 'another instance id');
    assert.deepEqual(pidsOf(renamed), all.filter((pid) => pid !== fixture!.report.daemon), 'the daemon is found by the marker only');
    const back = tracker.sample(identity, 10_507);
    assert.equal(back.full, true);
    assert.deepEqual(pidsOf(back), all);
  });
});

describe('TreeTracker following a tree that changes between samples', () => {
  const instanceId = uniqueInstanceId('tree-tracker-growing');
  let fixture: StartedFixture<GrowingReport> | undefined;
  let identity: TreeIdentity;
  const daemons: number[] = [];

  before(async () => {
    fixture = await startFixture<GrowingReport>('growing-worker.sh', instanceId);
    identity = identityOf(fixture.report.worker, instanceId);
  });
  after(async () => {
    await fixture?.cleanup(daemons);
  });

  /** Makes the worker double-fork a marked daemon; resolves with its pid once it runs `sleep`. */
  const forkDaemon = async (n: number): Promise<number> => {
    const file = join(fixture!.scratchDir, `daemon-${n}`);
    process.kill(fixture!.report.worker, 'SIGUSR1');
    await waitFor(() => existsSync(file), `the worker to report daemon ${n}`);
    const pid = Number(readFileSync(file, 'utf8'));
    daemons.push(pid);
    // Its parent is the setsid'd sh, leader of the daemon's session and marked too, so a tree
    // member until it exits: wait for that exit (the daemon reparented away from its session leader).
    await waitFor(() => {
      const s = statOf(pid);
      return s?.comm === 'sleep' && s.ppid !== s.sid;
    }, `daemon ${pid} to exec sleep and be reparented`);
    return pid;
  };

  test('a double-forked marked escapee born after the first sample is found by the next incremental one', async () => {
    const tracker = new TreeTracker(table);
    const r = fixture!.report;
    await waitFor(() => childrenOf(r.worker, 'sleep').length === 1, 'the worker’s sleep child');
    const before = tracker.sample(identity, 0);
    assert.equal(before.full, true);
    const daemon = await forkDaemon(1);
    const s = statOf(daemon)!;
    assert.ok(s.pgid !== r.worker && s.sid !== r.worker && s.ppid !== r.worker, 'the daemon left group, session and parent');
    const next = tracker.sample(identity, 1);
    assert.equal(next.full, false);
    assert.deepEqual(pidsOf(next), sorted([...pidsOf(before), daemon]));
  });

  test('a member that exits is gone from the next incremental sample, and its replacement (a new pid) is in it', async () => {
    const tracker = new TreeTracker(table);
    const r = fixture!.report;
    const [child] = await waitForValue('the worker’s one sleep child', () => {
      const kids = childrenOf(r.worker, 'sleep');
      return kids.length === 1 ? kids : null;
    });
    const first = tracker.sample(identity, 0);
    assert.ok(pidsOf(first).includes(child!));
    const childStart = statOf(child!)!.startTime;
    process.kill(child!, 'SIGKILL');
    const [replacement] = await waitForValue(`child ${child} to be reaped and replaced`, () => {
      // Gone first, then listed: listed first, the dying child could still be among the kids. Gone
      // is reaped: no process with its pid, or another (a busy suite hands pids out again).
      const now = statOf(child!);
      if (now !== null && now.startTime === childStart) return null;
      const kids = childrenOf(r.worker, 'sleep');
      return kids.length === 1 ? kids : null;
    });
    const next = tracker.sample(identity, 1);
    assert.equal(next.full, false);
    assert.ok(!pidsOf(next).includes(child!), `exited child ${child} still returned`);
    assert.ok(pidsOf(next).includes(replacement!), `replacement ${replacement} not returned`);
    assert.deepEqual(pidsOf(next), sorted(findTree(table, identity).map((p) => p.pid)));
  });

  test('a daemon that exits is gone from the next incremental sample', async () => {
    const tracker = new TreeTracker(table);
    const daemon = await forkDaemon(2);
    assert.ok(pidsOf(tracker.sample(identity, 0)).includes(daemon));
    process.kill(daemon, 'SIGKILL');
    // Reparented to init or a subreaper, it may linger as a zombie: the tracker drops it either way.
    await waitFor(() => { const s = statOf(daemon); return s === null || s.state === 'Z'; }, `daemon ${daemon} to die`);
    const next = tracker.sample(identity, 1);
    assert.equal(next.full, false);
    assert.ok(!pidsOf(next).includes(daemon));
  });
});

describe('TreeTracker on a fake /proc', () => {
  // Pid reuse between two samples and a foreign-uid link cannot be staged on the real /proc.
  const root = mkdtempSync(join(tmpdir(), 'autopilotd-fakeproc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let next = 0;
  /** A fresh fake /proc; `add` writes (or rewrites) one process. */
  const fakeProc = (): { table: ProcTable; add: (p: FakeProcess) => void; remove: (pid: number) => void; cursor: (lastPid: number) => void } => {
    const dir = join(root, String(++next));
    mkdirSync(dir);
    return {
      table: new ProcTable(dir),
      /** The kernel's pid cursor, as /proc/sys/kernel/ns_last_pid shows it (pid_max 32768). */
      cursor: (lastPid) => {
        mkdirSync(join(dir, 'sys/kernel'), { recursive: true });
        writeFileSync(join(dir, 'sys/kernel/ns_last_pid'), `${lastPid}\n`);
        writeFileSync(join(dir, 'sys/kernel/pid_max'), '32768\n');
      },
      add: (p) => {
        mkdirSync(join(dir, String(p.pid)), { recursive: true });
        const fields = ['S', p.ppid, p.pgid ?? p.pid, p.sid ?? p.pid, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, p.startTimeTicks ?? 1000, 0, 10, 0];
        writeFileSync(join(dir, `${p.pid}/stat`), `${p.pid} (p) ${fields.join(' ')}\n`);
        writeFileSync(join(dir, `${p.pid}/status`), `Name:\tp\nUid:\t${p.uid ?? 1000}\t0\t0\t0\n`);
        writeFileSync(join(dir, `${p.pid}/environ`), p.environ ?? (p.marked === true ? 'AUTOPILOTD_INSTANCE=fake\0' : 'OTHER=1\0'));
      },
      remove: (pid) => rmSync(join(dir, String(pid)), { recursive: true }),
    };
  };
  const identity: TreeIdentity = { root: { pid: 100, startTimeTicks: 1000 }, pgid: 100, instanceId: 'fake', uid: 1000, protectedPids: new Set([1]) };
  const pidsAt = (tracker: TreeTracker, nowMs: number, full: boolean): number[] => {
    const s = tracker.sample(identity, nowMs);
    assert.equal(s.full, full, `sample at ${nowMs} ms full`);
    return pidsOf(s);
  };

  test('a member’s pid taken by a new process is judged afresh: kept only if the new one belongs to the tree', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 101, ppid: 100, pgid: 100, sid: 100 });
    fake.add({ pid: 102, ppid: 100, pgid: 100, sid: 100 });
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100, 101, 102]);
    fake.add({ pid: 101, ppid: 1, startTimeTicks: 2000 }); // a stranger in its own session
    fake.add({ pid: 102, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 }); // a new member
    assert.deepEqual(pidsAt(tracker, 1, false), [100, 102]);
    assert.equal(tracker.sample(identity, 2).members.find((p) => p.pid === 102)?.startTimeTicks, 2000);
    assert.deepEqual(sorted(findTree(fake.table, identity).map((p) => p.pid)), [100, 102]);
  });

  test('a known outsider is not read again until the next full scan, which catches its pid reused by a member', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 200, ppid: 1 });
    const tracker = new TreeTracker(fake.table, { fullScanIntervalMs: 1000 });
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    // Pid 200 exits and a child of the worker gets it before the next sample: it looks known.
    fake.add({ pid: 200, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 });
    assert.deepEqual(pidsAt(tracker, 500, false), [100], 'an incremental sample reads no known outsider');
    assert.deepEqual(pidsAt(tracker, 1000, true), [100, 200]);
    assert.deepEqual(pidsAt(tracker, 1001, false), [100, 200]);
  });

  test('a known outsider’s pid handed out again since the last sample, per the kernel’s pid cursor, is read again', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 320, ppid: 1 }); // an outsider from the pid space's previous round
    fake.add({ pid: 400, ppid: 1 });
    fake.cursor(310);
    const tracker = new TreeTracker(fake.table, { fullScanIntervalMs: 60_000 });
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    // 320 exits and the worker forks twice: 311..325 were handed out, 320 among them, to a member.
    fake.add({ pid: 320, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 });
    // 400 is reused too, but outside the range the cursor covers: not looked at again yet.
    fake.add({ pid: 400, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 });
    fake.cursor(325);
    assert.deepEqual(pidsAt(tracker, 1, false), [100, 320]);
  });

  test('the pid cursor’s range wraps round pid_max', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 305, ppid: 1 });
    fake.add({ pid: 32766, ppid: 1 });
    fake.cursor(32760);
    const tracker = new TreeTracker(fake.table, { fullScanIntervalMs: 60_000 });
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    fake.add({ pid: 305, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 });
    fake.add({ pid: 32766, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 });
    fake.cursor(310); // 32761..32767, then 300..310 after the wrap
    assert.deepEqual(pidsAt(tracker, 1, false), [100, 305, 32766]);
  });

  test('a pid gone from /proc and back (reused) is read as new', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 200, ppid: 1 });
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    fake.remove(200);
    assert.deepEqual(pidsAt(tracker, 1, false), [100]);
    fake.add({ pid: 200, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 2000 });
    assert.deepEqual(pidsAt(tracker, 2, false), [100, 200]);
  });

  test('follows ancestry through a tree process of another uid, as findTree does', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 110, ppid: 100, uid: 0 }); // e.g. sudo: own session, another owner
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    // Its child drops back to our uid, in yet another session, unmarked: linked only by ancestry.
    fake.add({ pid: 111, ppid: 110 });
    assert.deepEqual(pidsAt(tracker, 1, false), [100, 111]);
    assert.deepEqual(sorted(findTree(fake.table, identity).map((p) => p.pid)), [100, 111]);
  });

  test('finds a marked process whose parent is another new process, both born between samples', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    fake.add({ pid: 300, ppid: 1, marked: true });
    fake.add({ pid: 301, ppid: 300 }); // unmarked (exec'd with a scrubbed environment): its parent links it
    fake.add({ pid: 302, ppid: 1 }); // unrelated
    assert.deepEqual(pidsAt(tracker, 1, false), [100, 300, 301]);
  });

  test('an escapee whose environment read as empty (inside its execve) is read again by the next incremental sample (#14)', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    fake.add({ pid: 300, ppid: 1, environ: '' });
    assert.deepEqual(pidsAt(tracker, 1, false), [100]);
    fake.add({ pid: 300, ppid: 1, marked: true }); // the same process, its execve done
    assert.deepEqual(pidsAt(tracker, 2, false), [100, 300]);
  });

  test('the worker’s pid taken by a new session leader after the worker exited is neither the root nor its group (#14)', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100]);
    // Between two samples the worker exits, is reaped, and a bystander gets its pid and calls setsid.
    fake.add({ pid: 100, ppid: 1, startTimeTicks: 2000 });
    fake.add({ pid: 105, ppid: 100, startTimeTicks: 2001, pgid: 100, sid: 100 });
    assert.deepEqual(pidsAt(tracker, 1, false), []);
    assert.deepEqual(pidsAt(tracker, 2, false), [], 'and the group stays dropped');
  });

  test('the group id is kept from sample to sample only through a member that held it, also when the worker’s exit changes the identity (#14)', () => {
    const fake = fakeProc();
    fake.add({ pid: 1, ppid: 0 });
    fake.add({ pid: 100, ppid: 1 });
    fake.add({ pid: 101, ppid: 100, pgid: 100, sid: 100, startTimeTicks: 1100 });
    const tracker = new TreeTracker(fake.table);
    assert.deepEqual(pidsAt(tracker, 0, true), [100, 101]);
    fake.remove(100); // reaped; its child holds the group
    fake.add({ pid: 101, ppid: 1, pgid: 100, sid: 100, startTimeTicks: 1100 });
    assert.deepEqual(pidsAt(tracker, 1, false), [101]);
    // The child exits too; the number is reused for a new session whose leader exited at once.
    fake.remove(101);
    fake.add({ pid: 104, ppid: 1, pgid: 100, sid: 100, startTimeTicks: 3000 });
    // As the supervisor now describes the tree: the worker reaped, its group still named.
    const afterExit = { ...identity, root: null };
    const s = tracker.sample(afterExit, 2);
    assert.equal(s.full, true, 'a new identity: a full scan');
    assert.deepEqual(pidsOf(s), []);
  });
});

interface FakeProcess {
  pid: number;
  ppid: number;
  pgid?: number;
  sid?: number;
  startTimeTicks?: number;
  uid?: number;
  marked?: boolean;
  /** The raw environ, overriding `marked`. */
  environ?: string;
}
