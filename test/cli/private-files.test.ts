// Issue #14, items 6 and 7: the daemon's directories and files against another local user. Each
// case that needs one creates a second user and removes it afterwards; those skip, saying why,
// when we are not root. Every process a test starts is ended by PID.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, statSync, writeFileSync } from 'node:fs';
import { ProcTable } from '../../src/os/proc-table.js';
import { isAlive } from '../helpers/daemon.js';
import { createOtherUser, otherUserUnavailable, type OtherUser } from '../helpers/other-user.js';
import { markedPids, sandbox, type Sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const needsOtherUser = otherUserUnavailable() ?? false;

/** A second local user for this test, removed after it (its processes are ended first by the test). */
function otherUser(t: TestContext): OtherUser {
  const user = createOtherUser();
  t.after(() => user.remove());
  return user;
}

/** A process of ours ended by PID after the test. */
function track<C extends ChildProcess>(t: TestContext, child: C): C {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/**
 * A third daemon's live worker tree, as a record naming its instance id would make a daemon stop
 * it: a process carrying AUTOPILOTD_INSTANCE=<id>, and a stand-in for that daemon itself.
 */
function liveTree(t: TestContext, box: Sandbox): { instanceId: string; daemon: ChildProcess; worker: ChildProcess } {
  const instanceId = `third-${box.id}`;
  const daemon = track(t, spawn('sleep', ['1000'], { stdio: 'ignore' }));
  const worker = track(t, spawn('sleep', ['1000'], { stdio: 'ignore', env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId } }));
  return { instanceId, daemon, worker };
}

function recordText(pid: number, instanceId: string, startTicks: number): string {
  return JSON.stringify({ pid, instance_id: instanceId, started_at: new Date().toISOString(), start_ticks: startTicks, worker: null });
}

test('a record whose daemon still runs is never acted on: the tree it names lives on (issue #14, item 7)', async (t) => {
  const box = sandbox(t);
  const third = liveTree(t, box);
  await waitFor('the third tree to run', () => markedPids(third.instanceId).length === 1);
  const startTicks = new ProcTable().read(third.daemon.pid!)!.startTimeTicks;
  writeFileSync(`${box.pidFile}.instance`, recordText(third.daemon.pid!, third.instanceId, startTicks), { mode: 0o600 });

  // start returns once the worker spawned, which comes after any orphan stop would have finished.
  await box.start();
  assert.deepEqual(markedPids(third.instanceId), [third.worker.pid], 'the third tree was not stopped');
  assert.ok(isAlive(third.daemon.pid!));
  assert.match(box.log(), new RegExp(`WARN  the instance record names a daemon that still runs; its worker tree is left alone instance=${third.instanceId} pid=${third.daemon.pid}`));
  assert.doesNotMatch(box.log(), /worker tree of a previous daemon found/);

  // The files it writes in their place are its own, and nobody else's to read.
  assert.equal(statSync(`${box.pidFile}.instance`).mode & 0o777, 0o600);
  assert.equal(statSync(box.pidFile).mode & 0o777, 0o600);
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('a record another user owns is ignored: nothing it names is stopped (issue #14, item 7)', { skip: needsOtherUser }, async (t) => {
  const box = sandbox(t);
  const other = otherUser(t);
  const third = liveTree(t, box);
  await waitFor('the third tree to run', () => markedPids(third.instanceId).length === 1);
  // The daemon it names is dead, so only the owner check stands between the record and the tree.
  const dead = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => dead.on('exit', resolve));
  const path = `${box.pidFile}.instance`;
  writeFileSync(path, recordText(dead.pid!, third.instanceId, 1), { mode: 0o644 });
  chownSync(path, other.uid, other.gid);

  await box.start();
  assert.deepEqual(markedPids(third.instanceId), [third.worker.pid], 'the third tree was not stopped');
  assert.match(box.log(), new RegExp(`WARN  instance record ignored, no orphaned tree is looked for: ${path} is owned by uid ${other.uid} \\(regular file, mode 0644\\)`));
  assert.equal(statSync(path).uid, process.getuid!(), 'replaced by the daemon\'s own record');
  assert.equal((await box.cli(['stop'])).code, 0);
});
