import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { sendRequest } from '../../src/control/client.js';
import { ControlServer, SocketSetupError } from '../../src/control/server.js';
import { fixture, waitFor } from './harness.js';

function modeOf(p: string): number {
  return fs.statSync(p).mode & 0o7777;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SocketSetupError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof SocketSetupError, `expected SocketSetupError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a ${code} error, but listen succeeded`);
}

describe('ControlServer.listen', () => {
  it('creates the socket 0600 and a missing directory 0700 even when the umask is 0', async (t) => {
    const f = fixture(t);
    const previous = process.umask(0);
    try {
      await f.start();
      // The mask is process-wide; listen must hand it back untouched.
      assert.equal(process.umask(0), 0);
    } finally {
      process.umask(previous);
    }
    assert.equal(modeOf(path.dirname(f.socketPath)), 0o700);
    assert.equal(modeOf(f.socketPath), 0o600);
    assert.ok(fs.lstatSync(f.socketPath).isSocket());
    // Only the socket is left in the directory (the temporary bind name is gone).
    assert.deepEqual(fs.readdirSync(path.dirname(f.socketPath)), ['d.sock']);
  });

  it('creates missing parents 0700 too, whatever the umask (issue #14: the way to the socket must be private)', async (t) => {
    const f = fixture(t);
    const socketPath = path.join(f.dir, 'a', 'b', 'd.sock');
    const previous = process.umask(0o022);
    try {
      const server = await ControlServer.listen({ socketPath, handler: async () => ({}) });
      t.after(() => server.close());
    } finally {
      process.umask(previous);
    }
    assert.equal(modeOf(path.join(f.dir, 'a')), 0o700);
    assert.equal(modeOf(path.join(f.dir, 'a', 'b')), 0o700);
    assert.equal(modeOf(socketPath), 0o600);
  });

  it('refuses a group-writable socket directory and names the dir, owner and mode', async (t) => {
    const f = fixture(t);
    const runDir = path.dirname(f.socketPath);
    fs.mkdirSync(runDir);
    fs.chmodSync(runDir, 0o770);
    const err = await rejectsWith(f.start(), 'unsafe_socket_dir');
    assert.equal(err.path, runDir);
    assert.match(err.message, new RegExp(`${runDir}.*uid 0 .*mode 0770`));
    assert.equal(fs.existsSync(f.socketPath), false);
  });

  it('refuses a world-writable sticky directory such as /tmp', async (t) => {
    const f = fixture(t);
    const runDir = path.dirname(f.socketPath);
    fs.mkdirSync(runDir);
    fs.chmodSync(runDir, 0o1777);
    const err = await rejectsWith(f.start(), 'unsafe_socket_dir');
    assert.match(err.message, /mode 01777/);
  });

  it('refuses a socket directory owned by another user', async (t) => {
    const f = fixture(t);
    const runDir = path.dirname(f.socketPath);
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.chownSync(runDir, 65534, 65534);
    const err = await rejectsWith(f.start(), 'unsafe_socket_dir');
    assert.match(err.message, /owned by uid 65534/);
    assert.deepEqual(fs.readdirSync(runDir), []);
  });

  it('refuses a socket directory that is a symbolic link, even to a private directory (issue #14)', async (t) => {
    const f = fixture(t);
    const runDir = path.dirname(f.socketPath);
    fs.mkdirSync(path.join(f.dir, 'real'), { mode: 0o700 });
    fs.symlinkSync(path.join(f.dir, 'real'), runDir);
    const err = await rejectsWith(f.start(), 'unsafe_socket_dir');
    assert.equal(err.path, runDir);
    assert.match(err.message, new RegExp(`^unsafe socket directory: ${runDir} is a symbolic link to ${path.join(f.dir, 'real')}; it must be a directory owned by uid \\d+, not a symbolic link`));
    assert.deepEqual(fs.readdirSync(path.join(f.dir, 'real')), []);
  });

  it('refuses a socket directory under a directory others can write without the sticky bit (issue #14)', async (t) => {
    const f = fixture(t);
    const open = path.join(f.dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const socketPath = path.join(open, 'run', 'd.sock');
    const err = await rejectsWith(ControlServer.listen({ socketPath, handler: async () => ({}) }), 'unsafe_socket_dir');
    assert.equal(err.path, open);
    assert.match(err.message, /which others can write without the sticky bit \(directory owned by uid \d+ with mode 0777\)/);
    assert.equal(fs.existsSync(path.join(open, 'run')), false);
  });

  it('replaces a stale socket left by a daemon that was killed', async (t) => {
    const f = fixture(t);
    fs.mkdirSync(path.dirname(f.socketPath), { mode: 0o700 });
    const script = `require('net').createServer().listen(process.argv[1], () => process.stdout.write('ready\\n'))`;
    const child = spawn(process.execPath, ['-e', script, f.socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 'the child to listen on the socket');
    child.kill('SIGKILL');
    await exited;
    // A second name keeps the stale inode allocated, so its number cannot be reused for ours.
    const keep = path.join(f.dir, 'stale-link');
    fs.linkSync(f.socketPath, keep);
    const staleIno = fs.statSync(keep).ino;

    const server = await f.start();
    assert.notEqual(fs.statSync(f.socketPath).ino, staleIno);
    assert.ok(f.events.some((e) => e.type === 'stale_socket_removed'));
    const client = await f.connect();
    client.request(1, 'status');
    assert.equal((await client.reply()).ok, true);
    assert.equal(server.connectionCount, 1);
  });

  it('refuses to start while another daemon listens, and leaves that daemon working', async (t) => {
    const f = fixture(t);
    await f.start();
    const ino = fs.statSync(f.socketPath).ino;
    await rejectsWith(f.start(), 'already_running');
    assert.equal(fs.statSync(f.socketPath).ino, ino);
    const client = await f.connect();
    client.request('still', 'status');
    assert.equal((await client.reply()).id, 'still');
  });

  it('refuses a regular file, a directory or a symlink at the socket path and keeps it', async (t) => {
    const f = fixture(t);
    const runDir = path.dirname(f.socketPath);
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.writeFileSync(f.socketPath, 'user data');
    await rejectsWith(f.start(), 'not_a_socket');
    assert.equal(fs.readFileSync(f.socketPath, 'utf8'), 'user data');

    fs.unlinkSync(f.socketPath);
    fs.mkdirSync(f.socketPath);
    await rejectsWith(f.start(), 'not_a_socket');
    assert.ok(fs.statSync(f.socketPath).isDirectory());

    fs.rmdirSync(f.socketPath);
    fs.writeFileSync(path.join(f.dir, 'target'), 'keep');
    fs.symlinkSync(path.join(f.dir, 'target'), f.socketPath);
    await rejectsWith(f.start(), 'not_a_socket');
    assert.equal(fs.readlinkSync(f.socketPath), path.join(f.dir, 'target'));
  });

  it('refuses a socket path longer than Unix sockets allow', async (t) => {
    const f = fixture(t);
    const socketPath = path.join(f.dir, 'x'.repeat(120));
    await assert.rejects(ControlServer.listen({ socketPath, handler: async () => ({}) }), { code: 'socket_path_too_long' });
  });
});

describe('ControlServer.close', () => {
  it('stops listening and removes its own socket file', async (t) => {
    const f = fixture(t);
    const server = await f.start();
    await server.close();
    assert.equal(fs.existsSync(f.socketPath), false);
    await assert.rejects(f.connect(), { code: 'ENOENT' });
    assert.ok(f.events.some((e) => e.type === 'closed' && e.unlinked));
    await server.close(); // idempotent
  });

  it('leaves a socket that replaced its own in place', async (t) => {
    const f = fixture(t);
    const first = await f.start();
    fs.unlinkSync(f.socketPath);
    await f.start();
    const secondIno = fs.statSync(f.socketPath).ino;
    await first.close();
    assert.equal(fs.statSync(f.socketPath).ino, secondIno);
    const client = await f.connect();
    client.request(2, 'status');
    assert.equal((await client.reply()).ok, true);
  });

  it('ends idle connections and lets a running request finish with its reply', async (t) => {
    const f = fixture(t);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    const server = await f.start({
      handler: async (cmd) => {
        if (cmd === 'shutdown') {
          started = true;
          await gate;
        }
        return { cmd };
      },
    });
    const idle = await f.connect();
    const busy = await f.connect();
    // One write, so the server has read both lines before close(): the second waits in its queue.
    busy.send('{"v":1,"id":1,"cmd":"shutdown"}\n{"v":1,"id":2,"cmd":"status"}\n');
    await waitFor(() => started, 'the shutdown handler to start');
    await waitFor(() => server.connectionCount === 2, 'both connections to be registered');
    const closed = server.close();
    await idle.waitClosed('the idle connection to be ended by close()');
    release();
    await closed;
    assert.deepEqual(await busy.reply(), { v: 1, id: 1, ok: true, data: { cmd: 'shutdown' } });
    const second = await busy.reply();
    assert.equal(second.id, 2);
    assert.equal(second.error.code, 'shutting_down');
    await busy.waitClosed();
  });

  it('a connection accepted while closing is refused as shutting_down, not busy', async (t) => {
    const f = fixture(t);
    const server = await f.start();
    const { Socket } = await import('node:net');
    const [ours, theirs] = await socketPair(f.socketPath);
    t.after(() => { ours.destroy(); theirs.destroy(); });
    const closed = server.close();
    // What accept() does with a connection the listener handed over as close() began.
    (server as unknown as { accept(s: InstanceType<typeof Socket>): void }).accept(theirs);
    let text = '';
    ours.setEncoding('utf8').on('data', (d: string) => (text += d));
    await new Promise<void>((resolve) => ours.on('end', resolve));
    ours.end();
    await closed;
    assert.equal(JSON.parse(text).error.code, 'shutting_down');
    const rejectedEvent = f.events.find((e) => e.type === 'connection_rejected');
    assert.deepEqual(rejectedEvent, { type: 'connection_rejected', reason: 'shutting_down', connections: 0 });
    assert.deepEqual([server.stats.rejectedBusy, server.stats.rejectedShuttingDown], [0, 1]);
  });

  it('cuts a request that is still running after closeGraceMs', async (t) => {
    const f = fixture(t);
    let started = false;
    const server = await f.start({
      closeGraceMs: 100,
      handler: () => {
        started = true;
        return new Promise(() => {}); // never settles
      },
    });
    const client = await f.connect();
    client.request(1, 'reload');
    await waitFor(() => started, 'the handler to start');
    await server.close();
    await client.waitClosed();
    assert.equal(client.lines.length, 0);
    assert.equal(server.connectionCount, 0);
  });
});

describe('connection limit', () => {
  it('closes the longest-idle connection with busy to admit a new one at the limit (issue #15)', async (t) => {
    const f = fixture(t);
    const server = await f.start({ maxConnections: 2 });
    const oldest = await f.connect();
    const recent = await f.connect();
    await waitFor(() => server.connectionCount === 2, 'two connections to be registered');
    recent.request(1, 'status');
    assert.equal((await recent.reply()).ok, true);
    const late = await f.connect();
    const evicted = await oldest.reply('the eviction reply');
    assert.deepEqual([evicted.id, evicted.error.code], [null, 'busy']);
    assert.match(evicted.error.message, /to admit a new connection/);
    await oldest.waitClosed('the evicted connection to be closed');
    late.request(2, 'status');
    assert.equal((await late.reply()).ok, true);
    recent.request(3, 'status');
    assert.equal((await recent.reply()).ok, true);
    assert.deepEqual([server.stats.evictedIdle, server.stats.rejectedBusy], [1, 0]);
  });

  it('answers busy when every connection has a request in progress, and accepts again once one finishes', async (t) => {
    const f = fixture(t);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running = 0;
    const server = await f.start({
      maxConnections: 2,
      handler: async (cmd) => {
        if (cmd === 'restart-worker') {
          running += 1;
          await gate;
        }
        return { cmd };
      },
    });
    const a = await f.connect();
    const b = await f.connect();
    a.request(1, 'restart-worker');
    b.request(2, 'restart-worker');
    await waitFor(() => running === 2, 'both requests to start');
    const rejected = await f.connect();
    const reply = await rejected.reply('the busy reply');
    assert.deepEqual([reply.id, reply.error.code], [null, 'busy']);
    assert.match(reply.error.message, /too many control connections/);
    await rejected.waitClosed('the rejected connection to be closed');
    assert.equal(server.stats.rejectedBusy, 1);

    release();
    assert.equal((await a.reply()).id, 1);
    assert.equal((await b.reply()).id, 2);
    const c = await f.connect();
    c.request(3, 'status');
    assert.equal((await c.reply()).ok, true);
  });

  it('answers status while 1000 idle clients are connected (issue #15)', async (t) => {
    const f = fixture(t);
    // Both ends of every connection are in this process: two descriptors per client.
    const clients = Math.min(1000, Math.floor((openFileLimit() - 200) / 2));
    const server = await f.start();
    for (let i = 0; i < clients; i += 1) await f.connect();
    await waitFor(() => server.stats.accepted === clients, `${clients} connections to be accepted`);
    assert.deepEqual(await sendRequest(f.socketPath, 'status'), { cmd: 'status', args: {} });
    assert.ok(server.stats.evictedIdle >= clients - 64 + 1, JSON.stringify(server.stats));
    assert.equal(server.stats.rejectedBusy, 0);
  });
});

/** The soft limit on open files, from /proc (Node has no getrlimit). */
function openFileLimit(): number {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = Number(line?.split(/\s{2,}/)[1]);
  return Number.isFinite(soft) ? soft : 1024;
}

/** A connected pair of sockets over a fresh listener beside `socketPath`: [client side, server side]. */
async function socketPair(socketPath: string): Promise<[import('node:net').Socket, import('node:net').Socket]> {
  const net = await import('node:net');
  const pairPath = `${socketPath}.pair`;
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(pairPath, resolve));
  try {
    const accepted = new Promise<import('node:net').Socket>((resolve) => listener.once('connection', resolve));
    const client = net.connect(pairPath);
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    return [client, await accepted];
  } finally {
    listener.close();
  }
}
