// subscribeEvents, the CLI's end of a stream: events handed on in order, the end line returned,
// an abort ending it quietly, and every failure as the ControlError a command reports.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { subscribeEvents } from '../../src/control/subscribe-client.js';
import type { StreamEvent } from '../../src/control/events-protocol.js';
import { ControlError } from '../../src/control/protocol.js';
import { fixture, TestEvents, waitFor } from './harness.js';

test('without follow: the backlog in order, then the `done` end', async (t) => {
  const f = fixture(t);
  const events = new TestEvents();
  for (let i = 1; i <= 3; i++) events.emit(`e${i}`);
  await f.start({ events });
  const got: StreamEvent[] = [];
  const result = await subscribeEvents(f.socketPath, { follow: false, onEvent: (e) => got.push(e) });
  assert.deepEqual(got.map((e) => [e.seq, e.text]), [[1, 'e1'], [2, 'e2'], [3, 'e3']]);
  assert.equal(result.end?.reason, 'done');
});

test('with follow: live events until aborted, which resolves with no end and closes the connection', async (t) => {
  const f = fixture(t);
  const events = new TestEvents();
  const server = await f.start({ events });
  const abort = new AbortController();
  const got: string[] = [];
  const done = subscribeEvents(f.socketPath, { follow: true, onEvent: (e) => got.push(e.text), signal: abort.signal });
  await waitFor(() => events.listening === 1, 'the subscription');
  events.emit('live');
  await waitFor(() => got.length === 1, 'the live event');
  abort.abort();
  assert.deepEqual(await done, { end: null });
  await waitFor(() => server.subscriberCount === 0, 'the daemon side to end');
});

test('a refused subscribe is a ControlError with the daemon\'s code', async (t) => {
  const f = fixture(t);
  const server = await f.start({ events: new TestEvents(), maxConnections: 2, maxSubscribers: 1 });
  const abort = new AbortController();
  const first = subscribeEvents(f.socketPath, { follow: true, onEvent: () => {}, signal: abort.signal });
  await waitFor(() => server.subscriberCount === 1, 'the first subscriber');
  await assert.rejects(subscribeEvents(f.socketPath, { follow: true, onEvent: () => {} }), (err: unknown) => err instanceof ControlError && err.code === 'busy');
  abort.abort();
  assert.deepEqual(await first, { end: null });
});

test('no daemon is not_running; a daemon that hangs up mid-stream is disconnected', async (t) => {
  const f = fixture(t);
  await assert.rejects(subscribeEvents(path.join(f.dir, 'none.sock'), { follow: true, onEvent: () => {} }), (err: unknown) => err instanceof ControlError && err.code === 'not_running');
  const rude = path.join(f.dir, 'rude', 'r.sock');
  fs.mkdirSync(path.dirname(rude), { mode: 0o700 });
  const hangUp = net.createServer((s) => s.end('{"v":1,"id":1,"ok":true,"data":{}}\n'));
  await new Promise<void>((r) => hangUp.listen(rude, r));
  t.after(() => {
    hangUp.close();
  });
  await assert.rejects(subscribeEvents(rude, { follow: true, onEvent: () => {} }), (err: unknown) => err instanceof ControlError && err.code === 'disconnected' && /without ending the stream/.test(err.message));
});

test('without follow, a daemon that replies and never ends the stream is a timeout, not a wait forever', async (t) => {
  const f = fixture(t);
  const mute = path.join(f.dir, 'mute', 'm.sock');
  fs.mkdirSync(path.dirname(mute), { mode: 0o700 });
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.write('{"v":1,"id":1,"ok":true,"data":{}}\n');
  });
  await new Promise<void>((r) => server.listen(mute, r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  await assert.rejects(
    subscribeEvents(mute, { follow: false, onEvent: () => {}, replyTimeoutMs: 300 }),
    (err: unknown) => err instanceof ControlError && err.code === 'timeout' && /did not end within 300 ms/.test(err.message),
  );
});
