// Where the daemon listens and what it leaves on disk: a private socket directory and a 0600
// socket, refusal of directories others could tamper with, and recovery from a stale socket or a
// stale PID file, while a live listener is never taken over.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { isAlive } from '../helpers/daemon.js';
import { sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const NOBODY = 65534;

function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
}

/** A socket file nobody listens on, as a daemon killed with SIGKILL leaves it. */
async function makeStaleSocket(path: string): Promise<void> {
  const server = net.createServer();
  await listen(server, `${path}.tmp`);
  linkSync(`${path}.tmp`, path);
  // Closing unlinks the name the server bound (path.tmp); the hard link stays, with no listener.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(`${path}.tmp`, { force: true });
}

/** Connects to `path` as uid/gid 65534; resolves with 'connected' or the errno. */
function connectAsNobody(path: string): Promise<string> {
  const script = "require('net').connect(process.argv[1]).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => console.log(e.code));";
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.on('error', reject);
    child.on('close', () => resolve(out.trim()));
  });
}

const unsafeDirs: [string, (dir: string) => void, RegExp][] = [
  ['owned by another user', (dir) => chownSync(dir, NOBODY, NOBODY), /is owned by another user \(directory owned by uid 65534 with mode 0700\)/],
  ['group-writable', (dir) => chmodSync(dir, 0o770), /is writable by group or others \(directory owned by uid 0 with mode 0770\)/],
  ['writable by others', (dir) => chmodSync(dir, 0o757), /is writable by group or others \(directory owned by uid 0 with mode 0757\)/],
];

for (const [what, spoil, detail] of unsafeDirs) {
  test(`start refuses a socket directory ${what} as a configuration error, in the background and in the foreground, and leaves it as it was`, async (t) => {
    const box = sandbox(t);
    const sockDir = join(box.dir, 'run');
    mkdirSync(sockDir, { mode: 0o700 });
    spoil(sockDir);
    const before = statSync(sockDir);
    // Exit 78, naming the file and line of socket_path, the directory, what is wrong and what is expected.
    const message = new RegExp(`^autopilotd: invalid configuration:\n${box.configPath}:2:1: socket_path: unsafe socket directory: ${sockDir} ${detail.source}; expected a directory owned by uid 0, not a symbolic link, not writable by group or others, under directories that only root or uid 0 can change\n$`);

    for (const args of [['start'], ['start', '--foreground'], ['config', 'check'], ['status'], ['metrics'], ['events']]) {
      const r = await box.cli(args);
      assert.equal(r.code, 78, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }

    assert.deepEqual(box.processes(), [], 'nothing was started');
    assert.equal(box.log(), '', 'not even a log line');
    assert.equal(existsSync(box.pidFile), false, 'no pid file is left behind');
    assert.equal(existsSync(box.socketPath), false);
    const after = statSync(sockDir);
    assert.deepEqual([after.uid, after.mode], [before.uid, before.mode], 'the directory was not "fixed" behind the user\'s back');
  });
}

test('the socket is created 0600: in a directory others may enter, another user still cannot connect', async (t) => {
  const box = sandbox(t);
  chmodSync(box.dir, 0o711);
  const sockDir = join(box.dir, 'run');
  mkdirSync(sockDir);
  chmodSync(sockDir, 0o755); // readable by all, writable only by us: accepted
  await box.start();
  assert.equal(statSync(sockDir).mode & 0o777, 0o755, 'an existing safe directory keeps its mode');
  assert.equal(statSync(box.socketPath).mode & 0o777, 0o600);
  assert.equal(await connectAsNobody(box.socketPath), 'EACCES');
  assert.equal((await box.cli(['status'])).code, 0, 'its owner can');
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('a stale socket file is taken for no daemon and replaced by the next start', async (t) => {
  const box = sandbox(t);
  mkdirSync(join(box.dir, 'run'), { mode: 0o700 });
  await makeStaleSocket(box.socketPath);
  // A second name keeps the stale inode allocated, so its number cannot be reused for the new socket.
  linkSync(box.socketPath, join(box.dir, 'stale-kept'));
  const staleIno = statSync(box.socketPath).ino;

  const status = await box.cli(['status']);
  assert.equal(status.code, 3, 'nothing listens: not running');
  const { pid } = await box.start();
  assert.notEqual(statSync(box.socketPath).ino, staleIno, 'a new socket took the stale one\'s place');
  assert.equal((await box.status()).daemon.pid, pid);
  assert.equal((await box.cli(['stop'])).code, 0);
  assert.equal(existsSync(box.socketPath), false);
});

test('a live listener on the socket path is never taken over: start refuses, and the listener keeps its socket', async (t) => {
  const box = sandbox(t);
  mkdirSync(join(box.dir, 'run'), { mode: 0o700 });
  let accepted = 0;
  const foreign = net.createServer((c) => {
    accepted += 1;
    c.destroy();
  });
  await listen(foreign, box.socketPath);
  t.after(() => new Promise<void>((resolve) => foreign.close(() => resolve())));
  const ino = statSync(box.socketPath).ino;

  const fg = await box.cli(['start', '--foreground']);
  assert.equal(fg.code, 1);
  assert.match(fg.stderr, new RegExp(`cannot open the control socket: another daemon is listening on ${box.socketPath}`));
  // In the background, start asks the socket first; a listener that hangs up is no daemon it can trust.
  const bg = await box.cli(['start']);
  assert.equal(bg.code, 1);
  assert.match(bg.stderr, new RegExp(`^autopilotd: cannot tell whether a daemon runs at ${box.socketPath}: `));

  await waitFor(() => `the refused daemons to exit: ${JSON.stringify(box.processes())}`, () => box.processes().length === 0);
  assert.equal(statSync(box.socketPath).ino, ino, 'the socket file is the listener\'s own');
  const before = accepted;
  await new Promise<void>((resolve, reject) => net.connect(box.socketPath).on('connect', resolve).on('error', reject));
  await waitFor('the listener to accept a connection', () => accepted > before);
  assert.equal(existsSync(box.pidFile), false);
});

test('a stale PID file (dead process, another program, garbage) is replaced, and the other program is left alone', async (t) => {
  const box = sandbox(t);
  const other: ChildProcess = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.after(() => void other.kill('SIGKILL'));
  const dead = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => dead.on('exit', resolve));
  // start_ticks matches no process: the daemon that wrote the record is gone, its pid reused.
  const staleRecord = { pid: other.pid, instance_id: 'stale-instance', started_at: new Date().toISOString(), start_ticks: 1 };

  const cases: [string, () => void][] = [
    ['a dead pid', () => writeFileSync(box.pidFile, `${dead.pid}\n`)],
    // The record's daemon pid belongs to an unrelated process now (a record from before issue #14).
    ['another program\'s pid, with an instance record naming it', () => {
      writeFileSync(box.pidFile, `${other.pid}\n`);
      writeFileSync(`${box.pidFile}.instance`, JSON.stringify(staleRecord));
    }],
    ['garbage', () => writeFileSync(box.pidFile, 'not a pid\n')],
  ];
  for (const [what, prepare] of cases) {
    prepare();
    const { pid } = await box.start();
    assert.equal(readFileSync(box.pidFile, 'utf8'), `${pid}\n`, `${what}: replaced by the new daemon's pid`);
    assert.notEqual(box.instanceRecord()?.instance_id, 'stale-instance');
    assert.ok(isAlive(other.pid!), `${what}: the other program was not signalled`);
    const stop = await box.cli(['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(existsSync(box.pidFile), false, `${what}: removed on a clean exit`);
  }
});
