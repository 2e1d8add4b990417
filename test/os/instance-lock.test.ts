import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdirSync, mkdtempSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { acquireInstanceLock, AlreadyRunningError, LockError, lockPathFor } from '../../src/os/instance-lock.js';
import { collectLines } from '../helpers/lines.js';
import { waitFor } from '../helpers/wait.js';
import { killSeen, see } from './live-processes.js';

const LOCK_MODULE = new URL('../../src/os/instance-lock.js', import.meta.url).href;
const tempDir = mkdtempSync(join(tmpdir(), 'autopilotd-lock-test-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) killGroup(child);
  rmSync(tempDir, { recursive: true, force: true });
});

let counter = 0;
/** A lock path no other test uses. */
function freshLockPath(): string {
  counter += 1;
  return join(tempDir, `d-${counter}.pid.lock`);
}

// Holds the lock until killed (the lock alone does not keep a process alive, hence the interval).
// With SPAWN_CHILD it first starts a long-lived child and reports its pid, as the daemon starts a worker.
const HOLDER_SCRIPT = `
const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
acquireInstanceLock(process.env.LOCK_PATH);
if (process.env.SPAWN_CHILD) {
  const { spawn } = await import('node:child_process');
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  process.stdout.write('child ' + child.pid + '\\n');
}
process.stdout.write('locked\\n');
setInterval(() => {}, 1 << 30);
`;

// Loads the module, says "ready", and tries to lock when a line arrives on stdin; stays alive
// (stdin open) so a winner keeps the lock while the others try.
const RACER_SCRIPT = `
const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
process.stdin.once('data', () => {
  try {
    acquireInstanceLock(process.env.LOCK_PATH);
    process.stdout.write('won\\n');
  } catch (err) {
    process.stdout.write('lost:' + err.code + '\\n');
  }
});
process.stdout.write('ready\\n');
`;

interface Child {
  process: ChildProcess;
  lines: string[];
}

function spawnScript(script: string, lockPath: string, env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, LOCK_MODULE, LOCK_PATH: lockPath, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: true, // Own process group, so cleanup can kill it and anything it started.
  });
  children.push(child);
  return { process: child, lines: collectLines(child.stdout) };
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function killGroupAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  killGroup(child);
  await exited;
}

function assertAlreadyRunning(lockPath: string): void {
  assert.throws(() => acquireInstanceLock(lockPath), (err: unknown) => {
    assert.ok(err instanceof AlreadyRunningError);
    assert.equal(err.code, 'already_running');
    assert.equal(err.message, `autopilotd is already running: another daemon holds ${lockPath}`);
    return true;
  });
}

test('the lock file sits beside the file it guards', () => {
  assert.equal(lockPathFor('/run/user/1000/autopilotd/autopilotd.pid'), '/run/user/1000/autopilotd/autopilotd.pid.lock');
});

test('a second acquire in the same process fails with already_running until the first is released', () => {
  const lockPath = freshLockPath();
  const lock = acquireInstanceLock(lockPath);
  try {
    assert.equal(lock.path, lockPath);
    assert.equal(statSync(lockPath).mode & 0o777, 0o600);
    assertAlreadyRunning(lockPath);
    // Another lock file is another daemon and is not blocked.
    acquireInstanceLock(freshLockPath()).release();
  } finally {
    lock.release();
  }
  lock.release(); // idempotent
  acquireInstanceLock(lockPath).release();
});

test('holding the lock does not keep the process alive by itself', async () => {
  const child = spawnScript(
    `const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
     acquireInstanceLock(process.env.LOCK_PATH);
     process.stdout.write('locked\\n');`,
    freshLockPath(),
  );
  const [code, signal] = (await once(child.process, 'exit')) as [number | null, string | null];
  assert.deepEqual({ code, signal, lines: child.lines }, { code: 0, signal: null, lines: ['locked'] });
});

test('a lock held by another process blocks us, and is free as soon as that process is killed with SIGKILL', async () => {
  const lockPath = freshLockPath();
  const holder = spawnScript(HOLDER_SCRIPT, lockPath);
  await waitFor('the holder to print "locked"', () => holder.lines.includes('locked'));
  assertAlreadyRunning(lockPath);
  // Anyone of ours who tries with flock(1) is refused as well: it is one kernel lock.
  assert.equal(spawnSync('flock', ['--nonblock', lockPath, 'true']).status, 1);

  const exited = once(holder.process, 'exit');
  process.kill(holder.process.pid as number, 'SIGKILL');
  const [, signal] = (await exited) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');
  acquireInstanceLock(lockPath).release();
});

test('a child of the holder does not inherit the lock: it is free once the holder dies, while the child lives on', async () => {
  const lockPath = freshLockPath();
  const holder = spawnScript(HOLDER_SCRIPT, lockPath, { SPAWN_CHILD: '1' });
  await waitFor('the holder to print "locked"', () => holder.lines.includes('locked'));
  const childPid = Number(holder.lines.find((l) => l.startsWith('child '))?.slice('child '.length));
  const child = see(childPid);
  try {
    const fds = readdirSync(`/proc/${childPid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${childPid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    assert.ok(!fds.includes(lockPath), `the child's fds: ${fds.join(', ')}`);
    const exited = once(holder.process, 'exit');
    process.kill(holder.process.pid as number, 'SIGKILL');
    await exited;
    acquireInstanceLock(lockPath).release();
  } finally {
    await killGroupAndWait(holder.process);
    // By pid: the holder was killed above, so killGroupAndWait skips its group and the child outlives it.
    killSeen(child);
  }
});

test('of 10 processes acquiring at the same moment, exactly one wins', async () => {
  const lockPath = freshLockPath();
  const racers = Array.from({ length: 10 }, () => spawnScript(RACER_SCRIPT, lockPath));
  try {
    await waitFor('all 10 racers to print "ready"', () => racers.every((r) => r.lines.includes('ready')));
    for (const racer of racers) racer.process.stdin?.write('go\n');
    await waitFor('all 10 racers to report won or lost', () => racers.every((r) => r.lines.length === 2));
    const outcomes = racers.map((r) => r.lines[1]);
    assert.equal(outcomes.filter((o) => o === 'won').length, 1, `outcomes: ${outcomes.join(', ')}`);
    assert.equal(outcomes.filter((o) => o === 'lost:already_running').length, 9, `outcomes: ${outcomes.join(', ')}`);
  } finally {
    await Promise.all(racers.map((r) => killGroupAndWait(r.process)));
  }
});

function assertLockError(lockPath: string, pattern: RegExp): void {
  assert.throws(() => acquireInstanceLock(lockPath), (err: unknown) => {
    assert.ok(err instanceof LockError, String(err));
    assert.equal(err.code, 'lock_failed');
    assert.match(err.message, pattern);
    assert.ok(err.message.startsWith(`cannot take the instance lock ${lockPath}: `), err.message);
    return true;
  });
}

test('a symlink, a directory or a fifo at the lock path is refused, not followed or locked', () => {
  const target = join(tempDir, 'symlink-target');
  const link = freshLockPath();
  symlinkSync(target, link);
  assertLockError(link, /open failed: ELOOP/);
  assert.throws(() => statSync(target), /ENOENT/, 'nothing was created where the symlink points');

  const dir = freshLockPath();
  mkdirSync(dir);
  assertLockError(dir, /open failed: EISDIR/);

  const fifo = freshLockPath();
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  assertLockError(fifo, /not a regular file owned by uid \d+; it must be a regular file owned by uid \d+/);
});

test('a lock file owned by another user is refused', (t) => {
  if (process.getuid!() !== 0) return t.skip('needs root to give a file to another user');
  const lockPath = freshLockPath();
  writeFileSync(lockPath, '');
  chownSync(lockPath, 65534, 65534);
  assertLockError(lockPath, /a file owned by uid 65534; it must be a regular file owned by uid 0/);
});

test('without flock(1) in PATH the lock fails and says what to install', async () => {
  const child = spawnScript(
    `const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
     try { acquireInstanceLock(process.env.LOCK_PATH); process.stdout.write('locked\\n'); }
     catch (err) { process.stdout.write(err.code + ': ' + err.message + '\\n'); }`,
    freshLockPath(),
    { PATH: join(tempDir, 'no-such-bin') },
  );
  await once(child.process, 'exit');
  assert.equal(child.lines.length, 1, child.lines.join('\n'));
  assert.match(child.lines[0]!, /^lock_failed: cannot take the instance lock .*: flock\(1\) was not found in PATH; install util-linux$/);
});
