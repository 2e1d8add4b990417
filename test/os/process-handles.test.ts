// Pidfds for tree members (issue #18), with real processes and the real kernel: a member signalled
// through its pidfd after its pid was handed out again reaches nobody, the start-time check after
// the open refuses a pid reused before it, the checked kill() still works without the helper, and
// no fd is left open. The pid is handed out again by steering /proc/sys/kernel/ns_last_pid (root).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { loadNative, NO_NATIVE_ENV } from '../../src/os/native.js';
import { ProcessHandles } from '../../src/os/process-handles.js';
import { ProcTable, type ProcessInfo } from '../../src/os/proc-table.js';
import { protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import { sendSignal, signalIfSame, signalPath } from '../../src/os/signal.js';
import { stopTree } from '../../src/os/tree-stop.js';
import { isAlive, killSeen, processKey, see, spawnOnPid, startFixture, uniqueInstanceId, type Seen } from './live-processes.js';

const table = new ProcTable();
const uid = process.getuid!();

function startSleeper(): { child: ChildProcess; info: ProcessInfo; exited: Promise<unknown> } {
  const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  const exited = once(child, 'exit');
  const info = table.read(child.pid!);
  assert.ok(info !== null, `sleep ${child.pid} is not in /proc`);
  return { child, info, exited };
}

/** Ends `child` (SIGKILL) and waits until Node has reaped it: its pid is free for the kernel to hand out. */
async function endAndReap(s: { child: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await s.exited;
}

/**
 * Waits until the boot clock is two ticks past `startTicks`: a process started now then has another
 * start time. Start times count clock ticks (10 ms), and a pid handed out again within the same
 * tick is, by start time, the same process; that is the case no start-time check can tell apart.
 */
async function untilTicksPast(startTicks: number): Promise<void> {
  const nowTicks = (): number => Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * table.clockTicksPerSecond);
  while (nowTicks() < startTicks + 2) await new Promise((resolve) => setTimeout(resolve, 5));
}

/**
 * A `sleep` given `pid` again (steering ns_last_pid), ended after the test; null, with the test
 * skipped, when other processes kept taking that pid.
 */
async function holderOf(t: TestContext, pid: number): Promise<Seen | null> {
  const holder = await spawnOnPid(pid, ['sleep', '1000'], { detached: true, stdio: 'ignore' });
  if (holder === null) {
    t.skip(`other processes kept taking pid ${pid}`);
    return null;
  }
  const seen = see(holder.pid!);
  t.after(async () => {
    const exited = holder.exitCode === null && holder.signalCode === null ? once(holder, 'exit') : null;
    killSeen(seen);
    await exited;
  });
  return seen;
}

function openFds(): string[] {
  return readdirSync('/proc/self/fd');
}

function pidfdsOpen(): number {
  let n = 0;
  for (const fd of openFds()) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]') n++;
    } catch {
      // The fd readdir itself used is closed by now.
    }
  }
  return n;
}

/** With the helper made absent for `fn` (loadNative reads the variable at each call). */
function withoutNative<T>(fn: () => T): T {
  const before = process.env[NO_NATIVE_ENV];
  process.env[NO_NATIVE_ENV] = '1';
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[NO_NATIVE_ENV];
    else process.env[NO_NATIVE_ENV] = before;
  }
}

describe('ProcessHandles', () => {
  test('the native helper is here, so signals go through pidfds', () => {
    assert.ok(loadNative().loaded, 'the native helper did not load');
    assert.deepEqual(signalPath(), { via: 'pidfd', reason: null });
    assert.equal(new ProcessHandles(table).viaPidfd, true);
  });

  test('as root, a member opened while in the tree that exits and whose pid is handed out again: the signal is "gone" and the new holder keeps running (a checked kill() checked before the reuse would have hit it)', async (t) => {
    if (uid !== 0) return t.skip('steering the next pid (ns_last_pid) needs root');
    const member = startSleeper();
    const handles = new ProcessHandles(table);
    t.after(async () => {
      handles.closeAll();
      await endAndReap(member);
    });
    // Opened and checked by start time while the member is the process the scan found.
    assert.equal(handles.open(member.info), 'open');
    await endAndReap(member);
    const holder = await holderOf(t, member.info.pid);
    if (holder === null) return;
    // The last start-time check was the one at the open, before the reuse: a kill() by pid now
    // reaches the new holder (signal 0 proves it without delivering anything). The pidfd does not.
    assert.equal(sendSignal(member.info.pid, 0), 'sent', 'the pid names a live process again');
    assert.equal(handles.signal(member.info, 'SIGKILL'), 'gone');
    assert.equal(handles.signal(member.info, 'SIGTERM'), 'gone');
    assert.ok(isAlive(holder), `the new holder of pid ${member.info.pid} was hit`);
    assert.equal(handles.openCount, 0, 'the gone member’s fd is closed');
  });

  test('as root, the start-time check after the open refuses a pid already handed out again before the open', async (t) => {
    if (uid !== 0) return t.skip('steering the next pid (ns_last_pid) needs root');
    const member = startSleeper();
    const handles = new ProcessHandles(table);
    t.after(() => handles.closeAll());
    await endAndReap(member);
    await untilTicksPast(member.info.startTimeTicks);
    const holder = await holderOf(t, member.info.pid);
    if (holder === null) return;
    // pidfd_open itself succeeds here, on the new holder: only the check after it tells them apart.
    assert.equal(handles.open(member.info), 'gone');
    assert.equal(handles.openCount, 0);
    assert.equal(handles.signal(member.info, 'SIGKILL'), 'gone');
    // The one-shot path (signalIfSame without handles) opens and checks the same way.
    assert.equal(signalIfSame(table, member.info, 'SIGKILL'), 'gone');
    assert.ok(isAlive(holder), `the new holder of pid ${member.info.pid} was hit`);
  });

  test('signals a live member through its fd: TERM, then "gone" once it is reaped; retain() closes the fds of members no longer in the tree', async () => {
    const a = startSleeper();
    const b = startSleeper();
    const handles = new ProcessHandles(table);
    try {
      assert.equal(handles.open(a.info), 'open');
      assert.equal(handles.open(b.info), 'open');
      assert.equal(handles.open(a.info), 'open', 'a second open reuses the fd');
      assert.equal(handles.openCount, 2);
      handles.retain([b.info]);
      assert.equal(handles.openCount, 1);
      assert.equal(handles.signal(b.info, 'SIGTERM'), 'sent');
      assert.deepEqual(await b.exited, [null, 'SIGTERM']);
      assert.equal(handles.signal(b.info, 'SIGTERM'), 'gone');
      assert.equal(handles.openCount, 0);
      // a was let go by retain(); signalled again, it is opened again (and checked) at need.
      assert.equal(handles.signal(a.info, 0), 'sent');
      assert.equal(handles.openCount, 1);
    } finally {
      handles.closeAll();
      await endAndReap(a);
      await endAndReap(b);
    }
  });

  test('without the helper, signals are the checked kill(): delivered, "gone" after the exit, a stale start time refused, and no fd held', async () => {
    const s = startSleeper();
    try {
      const path = withoutNative(() => signalPath());
      assert.deepEqual(path, { via: 'kill', reason: `disabled by ${NO_NATIVE_ENV}=1` });
      const handles = withoutNative(() => new ProcessHandles(table));
      assert.equal(handles.viaPidfd, false);
      assert.equal(handles.open(s.info), 'by-pid');
      assert.equal(handles.signal({ ...s.info, startTimeTicks: s.info.startTimeTicks - 1 }, 'SIGKILL'), 'gone');
      assert.equal(withoutNative(() => signalIfSame(table, { ...s.info, startTimeTicks: s.info.startTimeTicks - 1 }, 'SIGKILL')), 'gone');
      assert.ok(isAlive(see(s.info.pid)), 'a stale start time was signalled');
      assert.equal(handles.signal(s.info, 'SIGTERM'), 'sent');
      assert.deepEqual(await s.exited, [null, 'SIGTERM']);
      assert.equal(handles.signal(s.info, 'SIGTERM'), 'gone');
      assert.equal(withoutNative(() => signalIfSame(table, s.info, 'SIGTERM')), 'gone');
      assert.equal(handles.openCount, 0);
    } finally {
      await endAndReap(s);
    }
  });

  test('no fd is left open over many open, signal, retain and close cycles, nor by signalIfSame', async () => {
    const a = startSleeper();
    const b = startSleeper();
    try {
      const before = openFds().length;
      const pidfdsBefore = pidfdsOpen();
      for (let i = 0; i < 500; i++) {
        const handles = new ProcessHandles(table);
        handles.open(a.info);
        assert.equal(handles.signal(b.info, 0), 'sent');
        if (i % 2 === 0) handles.retain([b.info]);
        assert.equal(handles.signal({ ...a.info, startTimeTicks: a.info.startTimeTicks + 1 }, 0), 'gone');
        handles.closeAll();
        assert.equal(signalIfSame(table, a.info, 0), 'sent');
        assert.equal(signalIfSame(table, { ...b.info, startTimeTicks: b.info.startTimeTicks + 1 }, 0), 'gone');
      }
      assert.equal(pidfdsOpen(), pidfdsBefore, 'pidfds left open');
      assert.equal(openFds().length, before, 'fds left open');
    } finally {
      await endAndReap(a);
      await endAndReap(b);
    }
  });

  test('a tree stop that signals members one by one leaves no pidfd open', async () => {
    const instanceId = uniqueInstanceId('handles-stop');
    const fixture = await startFixture<{ worker: number; escapee: number }>('term-handlers.sh', instanceId);
    const { worker, escapee } = fixture.report;
    try {
      const pidfdsBefore = pidfdsOpen();
      const identity: TreeIdentity = { root: processKey(worker), pgid: worker, instanceId, uid, protectedPids: protectedPidsOf(table, process.pid) };
      const report = await stopTree({ table, identity, graceMs: 30_000 });
      // The escapee left the group: its TERM went through its own pidfd.
      assert.ok(report.termSent.includes(escapee), JSON.stringify(report));
      assert.deepEqual(report.survivors, []);
      assert.equal(pidfdsOpen(), pidfdsBefore, 'the stop left pidfds open');
    } finally {
      await fixture.cleanup([escapee]);
    }
  });
});
