import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMANDS, ControlError, type Command } from '../../src/control/protocol.js';
import { fixture, sleep, waitFor } from './harness.js';

describe('requests and replies', () => {
  it('round-trips every command with its args through the handler', async (t) => {
    const f = fixture(t);
    const calls: Array<[Command, Record<string, unknown>]> = [];
    await f.start({
      handler: async (cmd, args) => {
        calls.push([cmd, args]);
        return { did: cmd, n: args['n'] };
      },
    });
    const client = await f.connect();
    // `subscribe` turns the connection into a stream (subscribe.test.ts); it never reaches a handler.
    const handled = COMMANDS.filter((cmd) => cmd !== 'subscribe');
    for (const [n, cmd] of handled.entries()) {
      client.request({ seq: n }, cmd, { n });
      assert.deepEqual(await client.reply(`the reply to ${cmd}`), { v: 1, id: { seq: n }, ok: true, data: { did: cmd, n } });
    }
    assert.deepEqual(calls, handled.map((cmd, n) => [cmd, { n }]));
  });

  it('passes an empty args object when the request has none', async (t) => {
    const f = fixture(t);
    await f.start();
    const client = await f.connect();
    client.request(1, 'status');
    assert.deepEqual((await client.reply()).data, { cmd: 'status', args: {} });
  });

  it('answers pipelined requests in request order, one at a time, even when earlier ones are slower', async (t) => {
    const f = fixture(t);
    let running = 0;
    let maxRunning = 0;
    await f.start({
      handler: async (_cmd, args) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await sleep(Number(args['delayMs']));
        running -= 1;
        return { i: args['i'] };
      },
    });
    const client = await f.connect();
    const count = 20;
    let batch = '';
    for (let i = 0; i < count; i += 1) {
      batch += `${JSON.stringify({ v: 1, id: i, cmd: 'status', args: { i, delayMs: (count - i) * 2 } })}\n`;
    }
    client.send(batch);
    for (let i = 0; i < count; i += 1) {
      const reply = await client.reply(`reply ${i}`);
      assert.equal(reply.id, i);
      assert.deepEqual(reply.data, { i });
    }
    assert.equal(maxRunning, 1);
  });

  it('ignores blank lines between requests', async (t) => {
    const f = fixture(t);
    await f.start();
    const client = await f.connect();
    client.send('\n\r\n   \n{"v":1,"id":"after","cmd":"status"}\n');
    assert.equal((await client.reply()).id, 'after');
    assert.equal(client.lines.length, 1);
  });

  it('answers a client that half-closes right after sending its request', async (t) => {
    const f = fixture(t);
    await f.start({ handler: async () => sleep(50).then(() => ({ late: true })) });
    const client = await f.connect();
    client.request(1, 'status');
    client.socket.end();
    assert.deepEqual((await client.reply()).data, { late: true });
    await client.waitClosed();
  });
});

describe('bad input', () => {
  it('replies bad_json with a null id and keeps the connection open', async (t) => {
    const f = fixture(t);
    const server = await f.start();
    const client = await f.connect();
    client.send('{"v":1,"id":5,\n');
    const reply = await client.reply();
    assert.equal(reply.id, null);
    assert.equal(reply.error.code, 'bad_json');
    client.send(Buffer.from([0xff, 0xfe, 0x7b, 0x0a])); // invalid UTF-8
    assert.equal((await client.reply()).error.code, 'bad_json');
    client.request(6, 'status');
    assert.equal((await client.reply()).ok, true);
    assert.equal(server.stats.failedRequests, 2);
  });

  it('replies unsupported_version, bad_request and unknown_command, echoing the id when readable', async (t) => {
    const f = fixture(t);
    await f.start();
    const client = await f.connect();
    const cases: Array<[string, unknown, string]> = [
      ['{"v":2,"id":1,"cmd":"status"}', 1, 'unsupported_version'],
      ['{"v":1,"cmd":"status"}', null, 'bad_request'],
      ['{"v":1,"id":3,"cmd":["status"]}', 3, 'bad_request'],
      ['{"v":1,"id":4,"cmd":"status","args":"x"}', 4, 'bad_request'],
      ['[1,2]', null, 'bad_request'],
      ['{"v":1,"id":"u","cmd":"format-disk"}', 'u', 'unknown_command'],
    ];
    client.send(cases.map(([line]) => `${line}\n`).join(''));
    for (const [line, id, code] of cases) {
      const reply = await client.reply(`the reply to ${line}`);
      assert.equal(reply.ok, false, line);
      assert.deepEqual([reply.id, reply.error.code], [id, code], line);
      assert.equal(typeof reply.error.message, 'string');
    }
    client.request(7, 'status');
    assert.equal((await client.reply()).ok, true);
  });

  it('accepts a line of exactly maxLineBytes', async (t) => {
    const f = fixture(t);
    await f.start({ maxLineBytes: 1024 });
    const client = await f.connect();
    const head = '{"v":1,"id":1,"cmd":"status","pad":"';
    const line = `${head}${'x'.repeat(1024 - head.length - 2)}"}`;
    assert.equal(Buffer.byteLength(line), 1024);
    client.send(`${line}\n`);
    assert.equal((await client.reply()).ok, true);
  });

  it('replies line_too_long and closes as soon as an unfinished line exceeds maxLineBytes', async (t) => {
    const f = fixture(t);
    await f.start({ maxLineBytes: 1024 });
    const client = await f.connect();
    client.request('first', 'status');
    client.send('x'.repeat(1025)); // no newline: the server must not wait for one
    assert.equal((await client.reply()).id, 'first');
    const reply = await client.reply('the line_too_long reply');
    assert.deepEqual([reply.id, reply.error.code], [null, 'line_too_long']);
    await client.waitClosed();
  });

  it('replies line_too_long to a complete line over the limit', async (t) => {
    const f = fixture(t);
    await f.start({ maxLineBytes: 100 });
    const client = await f.connect();
    client.send(`${JSON.stringify({ v: 1, id: 1, cmd: 'status', pad: 'y'.repeat(200) })}\n`);
    assert.equal((await client.reply()).error.code, 'line_too_long');
    await client.waitClosed();
  });

  it('cleans up a client that disappears in the middle of a line', async (t) => {
    const f = fixture(t);
    const server = await f.start();
    const client = await f.connect();
    client.send('{"v":1,"id":1,"cm');
    await waitFor(() => server.connectionCount === 1, 'the connection to be registered');
    client.socket.destroy();
    await waitFor(() => server.connectionCount === 0, 'the server to drop the connection');
    assert.ok(f.events.some((e) => e.type === 'partial_line_dropped' && e.bytes === 17));
  });
});

describe('idle clients', () => {
  it('closes a client that connects and says nothing after idleTimeoutMs, with a timeout reply', async (t) => {
    const f = fixture(t);
    const server = await f.start({ idleTimeoutMs: 150 });
    const startedAt = Date.now();
    const client = await f.connect();
    await client.waitClosed('the idle client to be closed');
    assert.ok(Date.now() - startedAt >= 140, `closed after ${Date.now() - startedAt} ms`);
    assert.equal(JSON.parse(client.lines[0] ?? '{}').error.code, 'timeout');
    await waitFor(() => server.connectionCount === 0, 'the connection to be forgotten');
    assert.equal(server.stats.idleTimeouts, 1);
  });

  it('closes a client stuck in the middle of a line after requestTimeoutMs', async (t) => {
    const f = fixture(t);
    await f.start({ idleTimeoutMs: 60_000, requestTimeoutMs: 150 });
    const client = await f.connect();
    client.send('{"v":1,');
    await client.waitClosed('the client with a partial line to be closed');
  });

  it('keeps a connection whose request runs longer than idleTimeoutMs, and restarts the clock after it', async (t) => {
    const f = fixture(t);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await f.start({ idleTimeoutMs: 100, handler: async () => gate.then(() => ({ done: true })) });
    const client = await f.connect();
    client.request(1, 'restart-worker');
    await sleep(400); // four idle periods pass while the handler runs
    assert.equal(client.closed, false);
    release();
    assert.deepEqual((await client.reply()).data, { done: true });
    await client.waitClosed('the idle timeout after the reply');
  });
});

describe('slow clients', () => {
  it('closes a client that sends a line a byte at a time, slower in total than requestTimeoutMs (issue #15)', async (t) => {
    const f = fixture(t);
    // Each byte comes well within idleTimeoutMs; only the whole-line deadline can end this.
    const server = await f.start({ idleTimeoutMs: 60_000, requestTimeoutMs: 300 });
    const client = await f.connect();
    const line = '{"v":1,"id":1,"cmd":"status"}\n';
    let sent = 0;
    const drip = setInterval(() => {
      if (!client.closed && sent < line.length - 1) client.send(line[sent++] ?? '');
    }, 50);
    t.after(() => clearInterval(drip));
    await client.waitClosed('the dripping client to be closed');
    const reply = JSON.parse(client.lines[0] ?? '{}');
    assert.equal(reply.error.code, 'timeout');
    assert.match(reply.error.message, /not finished within 300 ms/);
    assert.equal(server.stats.requestTimeouts, 1);
  });

  it('answers a line that arrives in pieces within requestTimeoutMs', async (t) => {
    const f = fixture(t);
    await f.start({ requestTimeoutMs: 5_000 });
    const client = await f.connect();
    client.send('{"v":1,"id":1,');
    await sleep(50);
    client.send('"cmd":"status"}\n');
    assert.equal((await client.reply()).ok, true);
  });
});

describe('handler failures', () => {
  it('replies timeout to a request whose handler never settles, and keeps serving (issue #15)', async (t) => {
    const f = fixture(t);
    const server = await f.start({
      handlerTimeoutMs: 200,
      handler: (cmd) => (cmd === 'reload' ? new Promise(() => {}) : Promise.resolve({ cmd })),
    });
    const client = await f.connect();
    client.request('stuck', 'reload');
    client.request('next', 'status');
    const stuck = await client.reply('the timeout reply');
    assert.deepEqual([stuck.id, stuck.ok, stuck.error.code], ['stuck', false, 'timeout']);
    assert.match(stuck.error.message, /reload did not finish within 200 ms/);
    assert.deepEqual(await client.reply('the next reply'), { v: 1, id: 'next', ok: true, data: { cmd: 'status' } });
    assert.equal(server.stats.handlerTimeouts, 1);
  });


  it('maps ControlError to its code, any other throw to internal, and keeps serving', async (t) => {
    const f = fixture(t);
    const server = await f.start({
      handler: ((_cmd: Command, args: Record<string, unknown>) => {
        switch (args['mode']) {
          case 'control':
            return Promise.reject(new ControlError('not_running', 'the worker is not running'));
          case 'error':
            return Promise.reject(new Error('boom'));
          case 'string':
            return Promise.reject('just a string');
          case 'sync':
            throw new TypeError('thrown synchronously');
          case 'bigint':
            return Promise.resolve({ n: 1n });
          default:
            return Promise.resolve({ fine: true });
        }
      }) as never,
    });
    const client = await f.connect();
    const expect: Array<[string, string, RegExp]> = [
      ['control', 'not_running', /the worker is not running/],
      ['error', 'internal', /boom/],
      ['string', 'internal', /just a string/],
      ['sync', 'internal', /thrown synchronously/],
      ['bigint', 'internal', /not JSON-encodable/],
    ];
    for (const [mode, code, message] of expect) {
      client.request(mode, 'reload', { mode });
      const reply = await client.reply(`the reply for ${mode}`);
      assert.deepEqual([reply.id, reply.ok, reply.error.code], [mode, false, code], mode);
      assert.match(reply.error.message, message);
    }
    client.request('ok', 'status');
    assert.deepEqual((await client.reply()).data, { fine: true });
    assert.equal(server.stats.handlerErrors, 3);
  });
});

describe('pipelining clients share the event loop (issue #15)', () => {
  it('lets the event loop turn between the requests of a pipelined batch already read', async (t) => {
    const f = fixture(t);
    // Few enough that all replies fit the socket's write buffer: the old code then never waited
    // for 'drain' and answered the whole batch before any other callback ran.
    const count = 300;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    let callsWhenImmediateRan = -1;
    await f.start({
      handler: async () => {
        calls += 1;
        if (calls === 1) await gate; // the rest of the batch is read meanwhile
        return undefined;
      },
    });
    const client = await f.connect();
    let batch = '';
    for (let i = 0; i < count; i += 1) batch += `${JSON.stringify({ v: 1, id: i, cmd: 'status' })}\n`;
    client.send(batch);
    await waitFor(() => calls === 1 && client.socket.writableLength === 0, 'the batch to be sent');
    await sleep(100); // not needed by the new code; lets the old one read the whole batch
    setImmediate(() => (callsWhenImmediateRan = calls));
    release();
    await waitFor(() => client.lines.length === count, 'every reply');
    assert.ok(callsWhenImmediateRan > 0, 'the immediate did not run');
    assert.ok(callsWhenImmediateRan < count, `the immediate ran only after all ${count} requests ran`);
  });

  it('answers two pipelining clients in turns, not one after the other', async (t) => {
    const f = fixture(t);
    const order: string[] = [];
    await f.start({ handler: async (_cmd, args) => order.push(String(args['who'])) });
    const a = await f.connect();
    const b = await f.connect();
    const batch = (who: string): string =>
      Array.from({ length: 200 }, (_, i) => `${JSON.stringify({ v: 1, id: i, cmd: 'status', args: { who } })}\n`).join('');
    a.send(batch('a'));
    b.send(batch('b'));
    await waitFor(() => a.lines.length === 200 && b.lines.length === 200, 'every reply');
    // Whichever started first, the other must get in long before it is done.
    const firstOther = order.findIndex((who) => who !== order[0]);
    assert.ok(firstOther > 0 && firstOther < 100, `the second client first ran after ${firstOther} requests of the first`);
  });

  it('stops reading blank lines from a client while its request runs: what the server reads stays bounded', async (t) => {
    const f = fixture(t);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    await f.start({
      maxLineBytes: 4096,
      handler: async () => {
        started = true;
        await gate;
        return {};
      },
    });
    const client = await f.connect();
    client.request(1, 'restart-worker');
    await waitFor(() => started, 'the request to start');
    const noise = 8 * 1024 * 1024;
    client.send(Buffer.alloc(noise, 10)); // blank lines: no bytes of request, only newlines
    // Wait until the client's writes stop draining into the server, then check how far they got.
    let last = -1;
    while (client.socket.writableLength !== last) {
      last = client.socket.writableLength;
      await sleep(200);
    }
    assert.ok(client.socket.writableLength > noise / 2, `the server read ${noise - client.socket.writableLength} bytes of blank lines`);
    release();
    assert.equal((await client.reply()).id, 1);
    client.request(2, 'status');
    assert.equal((await client.reply('the reply after the blank lines')).id, 2);
  });
});

describe('clients that go away', () => {
  it('reports a reply written to a client that closed (EPIPE) and keeps serving others', async (t) => {
    const f = fixture(t);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    const server = await f.start({
      handler: async (cmd) => {
        if (cmd === 'stop-worker') {
          started = true;
          await gate;
        }
        return {};
      },
    });
    const leaver = await f.connect();
    leaver.request(1, 'stop-worker');
    await waitFor(() => started, 'the handler to start');
    leaver.socket.destroy();
    await leaver.waitClosed();
    release();
    await waitFor(() => server.connectionCount === 0, 'the server to drop the closed connection');
    const lost = f.events.filter((e) => e.type === 'connection_error' || e.type === 'reply_dropped');
    assert.equal(lost.length, 1, JSON.stringify(f.events));
    assert.deepEqual(lost[0], { type: 'connection_error', errno: 'EPIPE', message: 'write EPIPE' });
    assert.equal(server.stats.connectionErrors, 1);

    const other = await f.connect();
    other.request(2, 'status');
    assert.equal((await other.reply()).ok, true);
  });

  it('stops running requests while a client does not read its replies, and resumes when it does', async (t) => {
    const f = fixture(t);
    let calls = 0;
    const big = 'z'.repeat(256 * 1024);
    await f.start({
      handler: async () => {
        calls += 1;
        return { big };
      },
    });
    const client = await f.connect();
    client.socket.pause();
    const count = 20;
    let batch = '';
    for (let i = 0; i < count; i += 1) batch += `${JSON.stringify({ v: 1, id: i, cmd: 'status' })}\n`;
    client.send(batch);
    await waitFor(() => calls > 0, 'the first request to run');
    // Wait until the server stops making progress, then check it did not run everything.
    let last = -1;
    while (calls !== last) {
      last = calls;
      await sleep(200);
    }
    assert.ok(calls < count / 2, `handler ran ${calls} times while the client read nothing`);
    client.socket.resume();
    for (let i = 0; i < count; i += 1) assert.equal((await client.reply(`reply ${i}`)).id, i);
    assert.equal(calls, count);
  });

  it('cuts off a client that stops reading replies for idleTimeoutMs', async (t) => {
    const f = fixture(t);
    const big = 'z'.repeat(1024 * 1024); // more than the socket buffers hold
    const server = await f.start({ idleTimeoutMs: 200, handler: async () => ({ big }) });
    const client = await f.connect();
    client.socket.pause();
    client.request(1, 'status');
    await waitFor(() => server.connectionCount === 0, 'the server to drop the client that does not read');
    assert.equal(server.stats.idleTimeouts, 1);
  });
});
