import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { acquireInstanceLock, AlreadyRunningError, instanceLockName } from '../../src/os/instance-lock.js';
import { collectLines } from '../helpers/lines.js';

const LOCK_MODULE = new URL('../../src/os/instance-lock.js', import.meta.url).href;
const uid = process.getuid?.() ?? 0;
const tempDir = mkdtempSync(join(tmpdir(), 'autopilotd-lock-test-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) killGroup(child);
  rmSync(tempDir, { recursive: true, force: true });
});

let socketCounter = 0;
/** A socket path no other test (or earlier run) uses, so lock names never collide. */
function freshSocketPath(): string {
  socketCounter += 1;
  return join(tempDir, `run-${process.pid}-${socketCounter}`, 'autopilotd.sock');
}

// Holds the lock until killed (the lock alone does not keep a process alive, hence the interval).
const HOLDER_SCRIPT = `
const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
await acquireInstanceLock(process.env.SOCKET_PATH, Number(process.env.LOCK_UID));
process.stdout.write('locked\\n');
setInterval(() => {}, 1 << 30);
`;

// Loads the module, says "ready", and tries to lock when a line arrives on stdin; stays alive
// (stdin open) so a winner keeps the lock while the others try.
const RACER_SCRIPT = `
const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
process.stdin.once('data', async () => {
  try {
    await acquireInstanceLock(process.env.SOCKET_PATH, Number(process.env.LOCK_UID));
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

function spawnScript(script: string, socketPath: string): Child {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, LOCK_MODULE, SOCKET_PATH: socketPath, LOCK_UID: String(uid) },
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

async function withDeadline<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function killGroupAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  killGroup(child);
  await exited;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function assertAlreadyRunning(socketPath: string): Promise<void> {
  await assert.rejects(acquireInstanceLock(socketPath, uid), (err: unknown) => {
    assert.ok(err instanceof AlreadyRunningError);
    assert.equal(err.code, 'already_running');
    assert.match(err.message, /already running/);
    return true;
  });
}

test('the lock name is derived from the uid and the absolute socket path', () => {
  const name = instanceLockName('/run/user/1000/autopilotd.sock', 1000);
  assert.match(name, /^autopilotd\.lock\.1000\.[0-9a-f]{32}$/);
  assert.equal(instanceLockName('/run/user/1000/./x/../autopilotd.sock', 1000), name);
  assert.notEqual(instanceLockName('/run/user/1000/autopilotd.sock', 1001), name);
  assert.notEqual(instanceLockName('/run/user/1000/other.sock', 1000), name);
});

test('a second acquire in the same process fails with already_running until the first is released', async () => {
  const socketPath = freshSocketPath();
  const lock = await acquireInstanceLock(socketPath, uid);
  try {
    await assertAlreadyRunning(socketPath);
    // A different socket path is a different daemon and is not blocked.
    const other = await acquireInstanceLock(freshSocketPath(), uid);
    await other.release();
  } finally {
    await lock.release();
  }
  const again = await acquireInstanceLock(socketPath, uid);
  await again.release();
});

test('the lock hangs up on anyone who connects to it without sending anything', async () => {
  const socketPath = freshSocketPath();
  const lock = await acquireInstanceLock(socketPath, uid);
  const client = connect('\0' + lock.name);
  try {
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    await withDeadline(once(client, 'close'), 'the lock to close our connection');
    assert.equal(Buffer.concat(received).length, 0);
  } finally {
    client.destroy(); // Else release() would wait for this connection to end.
    await lock.release();
  }
});

test('holding the lock does not keep the process alive by itself', async () => {
  const socketPath = freshSocketPath();
  const child = spawnScript(
    `const { acquireInstanceLock } = await import(process.env.LOCK_MODULE);
     await acquireInstanceLock(process.env.SOCKET_PATH, Number(process.env.LOCK_UID));
     process.stdout.write('locked\\n');`,
    socketPath,
  );
  const [code, signal] = (await withDeadline(once(child.process, 'exit'), 'the child to exit on its own')) as [
    number | null,
    string | null,
  ];
  assert.deepEqual({ code, signal, lines: child.lines }, { code: 0, signal: null, lines: ['locked'] });
});

test('a lock held by another process blocks us, and is free as soon as that process is killed with SIGKILL', async () => {
  const socketPath = freshSocketPath();
  const holder = spawnScript(HOLDER_SCRIPT, socketPath);
  await waitFor(() => holder.lines.includes('locked'), 'the child to print "locked"');
  await assertAlreadyRunning(socketPath);

  const exited = once(holder.process, 'exit');
  process.kill(holder.process.pid as number, 'SIGKILL');
  const [, signal] = (await withDeadline(exited, 'the killed holder to exit')) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');

  const lock = await acquireInstanceLock(socketPath, uid);
  await lock.release();
});

test('of 10 processes acquiring at the same moment, exactly one wins', async () => {
  const socketPath = freshSocketPath();
  const racers = Array.from({ length: 10 }, () => spawnScript(RACER_SCRIPT, socketPath));
  try {
    await waitFor(() => racers.every((r) => r.lines.includes('ready')), 'all 10 racers to print "ready"');
    for (const racer of racers) racer.process.stdin?.write('go\n');
    await waitFor(() => racers.every((r) => r.lines.length === 2), 'all 10 racers to report won or lost');
    const outcomes = racers.map((r) => r.lines[1]);
    assert.equal(outcomes.filter((o) => o === 'won').length, 1, `outcomes: ${outcomes.join(', ')}`);
    assert.equal(outcomes.filter((o) => o === 'lost:already_running').length, 9, `outcomes: ${outcomes.join(', ')}`);
  } finally {
    await Promise.all(racers.map((r) => killGroupAndWait(r.process)));
  }
});
