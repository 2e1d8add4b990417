import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { sendRequest } from '../../src/control/client.js';
import { COMMANDS, ControlError } from '../../src/control/protocol.js';
import { fixture, waitFor } from './harness.js';

async function rejectsWithCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ControlError, `expected ControlError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ControlError ${code}, but the request succeeded`);
}

/** A plain socket server in the fixture dir that does whatever `onConnection` says. */
async function rawServer(t: TestContext, socketPath: string, onConnection: (s: net.Socket) => void): Promise<void> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  const server = net.createServer(onConnection);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
}

describe('sendRequest', () => {
  it('resolves with the data of every command', async (t) => {
    const f = fixture(t);
    await f.start();
    // `subscribe` is a stream, not one reply (subscribe-client.ts).
    for (const cmd of COMMANDS.filter((c) => c !== 'subscribe')) {
      assert.deepEqual(await sendRequest(f.socketPath, cmd, { x: 1 }), { cmd, args: { x: 1 } });
    }
    assert.deepEqual(await sendRequest(f.socketPath, 'status'), { cmd: 'status', args: {} });
  });

  it('throws the reply error code as a ControlError', async (t) => {
    const f = fixture(t);
    await f.start({
      handler: async () => {
        throw new ControlError('invalid_config', 'worker.command is empty');
      },
    });
    await rejectsWithCode(sendRequest(f.socketPath, 'reload'), 'invalid_config', /worker\.command is empty/);
  });

  it('throws not_running when the socket file does not exist', async (t) => {
    const f = fixture(t);
    await rejectsWithCode(sendRequest(f.socketPath, 'status'), 'not_running', /ENOENT/);
  });

  it('throws not_running when the socket is stale (nobody listens)', async (t) => {
    const f = fixture(t);
    const server = await f.start();
    const stale = path.join(f.dir, 'stale.sock');
    // A second name for the socket survives close(), which only removes the configured path.
    fs.linkSync(f.socketPath, stale);
    await server.close();
    assert.ok(fs.lstatSync(stale).isSocket());
    await rejectsWithCode(sendRequest(stale, 'status'), 'not_running', /ECONNREFUSED/);
  });

  it('throws timeout when the daemon does not answer in time', async (t) => {
    const f = fixture(t);
    await rawServer(t, f.socketPath, () => {});
    const startedAt = Date.now();
    await rejectsWithCode(sendRequest(f.socketPath, 'status', undefined, { timeoutMs: 150 }), 'timeout', /150 ms/);
    assert.ok(Date.now() - startedAt >= 140);
  });

  it('throws disconnected when the daemon closes without replying', async (t) => {
    const f = fixture(t);
    await rawServer(t, f.socketPath, (s) => s.once('data', () => s.end()));
    await rejectsWithCode(sendRequest(f.socketPath, 'shutdown'), 'disconnected');
  });

  it('throws internal for a reply that is not valid protocol, or answers another id', async (t) => {
    const f = fixture(t);
    await rawServer(t, f.socketPath, (s) => s.once('data', () => s.end('hello\n')));
    await rejectsWithCode(sendRequest(f.socketPath, 'status'), 'internal', /invalid JSON/);
    const other = path.join(f.dir, 'o', 'd.sock');
    await rawServer(t, other, (s) => s.once('data', () => s.end('{"v":1,"id":"nope","ok":true,"data":{}}\n')));
    await rejectsWithCode(sendRequest(other, 'status'), 'internal', /does not match/);
  });

  it('reads a reply that arrives in many small pieces', async (t) => {
    const f = fixture(t);
    await rawServer(t, f.socketPath, (s) =>
      s.once('data', (d) => {
        const id = JSON.parse(String(d)).id;
        const line = `${JSON.stringify({ v: 1, id, ok: true, data: { text: 'é'.repeat(50) } })}\n`;
        const bytes = Buffer.from(line);
        // Split inside multi-byte characters too; the client must decode the whole line.
        let i = 0;
        const tick = (): void => {
          if (i >= bytes.length) return;
          s.write(bytes.subarray(i, i + 7));
          i += 7;
          setTimeout(tick, 1);
        };
        tick();
      }),
    );
    assert.deepEqual(await sendRequest(f.socketPath, 'status'), { text: 'é'.repeat(50) });
  });

  it('throws busy when the daemon refuses the connection', async (t) => {
    const f = fixture(t);
    let started = false;
    // Only a connection with a request in progress holds its slot; an idle one would be evicted.
    await f.start({ maxConnections: 1, closeGraceMs: 100, handler: () => ((started = true), new Promise(() => {})) });
    (await f.connect()).request(1, 'restart-worker');
    await waitFor(() => started, 'the first connection to start its request');
    await rejectsWithCode(sendRequest(f.socketPath, 'status'), 'busy');
  });

  it('gets permission_denied as another user, from the 0700 directory and from the 0600 socket', async (t) => {
    const f = fixture(t);
    await f.start();
    // Open the temp dir so only the socket dir and the socket itself keep the other user out.
    fs.chmodSync(f.dir, 0o755);
    assert.equal(await statusAsNobody(t, f.socketPath), 'permission_denied');
    // Loosen the directory after the fact: the socket's own mode must still refuse.
    fs.chmodSync(path.dirname(f.socketPath), 0o711);
    assert.equal(await statusAsNobody(t, f.socketPath), 'permission_denied');
  });
});

/** Runs sendRequest(socketPath, 'status') as uid 65534 and returns 'ok' or the error code. */
async function statusAsNobody(t: TestContext, socketPath: string): Promise<string> {
  const clientUrl = new URL('../../src/control/client.js', import.meta.url).href;
  const script = `import(${JSON.stringify(clientUrl)}).then((m) => m.sendRequest(process.argv[1], 'status'))
    .then(() => console.log('ok'), (e) => console.log(e.code))`;
  const child = spawn(process.execPath, ['-e', script, socketPath], {
    uid: 65534,
    gid: 65534,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `child exited with ${String(code)}: ${out}`);
  return out.trim();
}

describe('client module', () => {
  it('imports only node:net and the pure protocol, so the CLI status path stays light', () => {
    const built = fs.readFileSync(fileURLToPath(new URL('../../src/control/client.js', import.meta.url)), 'utf8');
    const imports = [...built.matchAll(/^import\s[^;]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    assert.deepEqual(imports.sort(), ['./protocol.js', 'node:net']);
    assert.doesNotMatch(built, /import\(/);
  });
});
