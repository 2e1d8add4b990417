// `subscribe` on the control server (issue #19, "Events"): the backlog then live events on the same
// connection, follow=false ending with `done`, a subscriber that does not read dropped with a last
// line saying why (never buffered without bound), a cap on subscribers below the connection limit
// so that `status` always gets in, and the stream ending with the client or with the server.
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { fixture, TestEvents, waitFor, type AnyReply, type RawClient } from './harness.js';
import { DEFAULT_MAX_BUFFERED_BYTES } from '../../src/control/subscription.js';
import { encodeEvent } from '../../src/control/events-protocol.js';

async function subscribed(client: RawClient, args?: Record<string, unknown>): Promise<AnyReply> {
  client.request('s', 'subscribe', args);
  return client.reply('the subscribe reply');
}

/** The texts of the event lines the client got after its first `skip` lines. */
const texts = (client: RawClient, skip = 1): string[] => client.lines.slice(skip).map((l) => JSON.parse(l) as AnyReply).filter((m) => m.event).map((m) => m.event.text);

describe('subscribe', () => {
  it('sends the last 100 events after its reply, then each new one, each versioned with seq and time', async (t) => {
    const f = fixture(t);
    const events = new TestEvents();
    for (let i = 1; i <= 130; i++) events.emit(`old ${i}`);
    await f.start({ events });
    const client = await f.connect();
    assert.deepEqual(await subscribed(client), { v: 1, id: 's', ok: true, data: { backlog: 100, follow: true, max_buffered_bytes: 262144 } });
    await waitFor(() => client.lines.length === 101, 'the backlog');
    const first = JSON.parse(client.lines[1]!) as AnyReply;
    assert.deepEqual(first, { v: 1, event: { seq: 31, at: '1970-01-01T00:00:00.000Z', level: 'info', kind: 'test', text: 'old 31' } });
    events.emit('live 1');
    events.emit('live 2');
    await waitFor(() => client.lines.length === 103, 'the live events');
    assert.deepEqual(texts(client).slice(-3), ['old 130', 'live 1', 'live 2']);
  });

  it('with follow false sends the backlog and ends with a `done` line, also to a client that ended its side', async (t) => {
    const f = fixture(t);
    const events = new TestEvents();
    events.emit('one');
    events.emit('two');
    await f.start({ events });
    const client = await f.connect();
    client.request(1, 'subscribe', { follow: false });
    client.socket.end();
    await client.waitClosed();
    const messages = client.lines.map((l) => JSON.parse(l) as AnyReply);
    assert.deepEqual(messages.map((m) => Object.keys(m).filter((k) => k !== 'v')[0]), ['id', 'event', 'event', 'end']);
    assert.equal(messages[0].data.backlog, 2);
    assert.equal(messages[3].end.reason, 'done');
    assert.equal(events.listening, 0);
  });

  it('refuses bad args, and a server without events, with bad_request; the connection stays usable', async (t) => {
    const f = fixture(t);
    await f.start({ events: new TestEvents() });
    const client = await f.connect();
    const bad = await subscribed(client, { follow: 'yes' });
    assert.deepEqual([bad.ok, bad.error.code], [false, 'bad_request']);
    assert.match(bad.error.message, /"args\.follow" must be true or false/);
    client.request(2, 'status');
    assert.equal((await client.reply()).ok, true);

    const g = fixture(t);
    await g.start();
    const other = await g.connect();
    const none = await subscribed(other);
    assert.deepEqual([none.error.code, none.error.message], ['bad_request', 'this server has no event stream']);
  });

  it('answers no request sent after subscribe: the connection only streams', async (t) => {
    const f = fixture(t);
    const events = new TestEvents();
    await f.start({ events });
    const client = await f.connect();
    client.send('{"v":1,"id":1,"cmd":"subscribe"}\n{"v":1,"id":2,"cmd":"status"}\n');
    await client.reply();
    client.request(3, 'status');
    events.emit('after');
    await waitFor(() => client.lines.length === 2, 'the event');
    assert.deepEqual(texts(client), ['after']);
  });

  it('drops a subscriber that does not read once its unread bytes pass the 256 KiB budget, with a last line saying why', async (t) => {
    const f = fixture(t);
    const events = new TestEvents();
    // The default budget, as the daemon runs it.
    const limit = DEFAULT_MAX_BUFFERED_BYTES;
    const server = await f.start({ events });
    const socket = net.connect(f.socketPath);
    t.after(() => socket.destroy());
    await new Promise((r) => socket.once('connect', r));
    socket.write('{"v":1,"id":1,"cmd":"subscribe"}\n');
    await waitFor(() => events.listening === 1, 'the subscription');
    socket.pause();
    // Far more than the socket buffers hold: the kernel's, then `limit` bytes in the daemon.
    const text = 'x'.repeat(1000);
    const lineBytes = encodeEvent({ seq: 1, at: new Date(0).toISOString(), level: 'info', kind: 'test', text }).length;
    let emitted = 0;
    while (events.listening === 1 && emitted < 20_000) {
      events.emit(text);
      emitted += 1;
    }
    assert.equal(events.listening, 0, `still subscribed after ${emitted} events of 1 KB`);
    await waitFor(() => server.stats.droppedSubscribers === 1, 'the drop to be counted');
    const dropped = f.events.find((e) => e.type === 'subscriber_dropped');
    assert.ok(dropped !== undefined && dropped.type === 'subscriber_dropped');
    assert.equal(dropped.limitBytes, limit);
    assert.ok(dropped.bufferedBytes > limit && dropped.bufferedBytes < limit + 4096, `held ${dropped.bufferedBytes} bytes at most one line past the limit`);
    // What it was sent before the drop is bounded by the budget: the kernel's socket buffer (its
    // send buffer size bounds what it accepted; a few more event lines allowed for the seq digits)
    // plus `limit` bytes held by the daemon. A subscriber dropped late, or the budget counted in
    // lines rather than bytes, sends more; one dropped early sends fewer than the budget holds.
    const kernelBytes = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
    const most = Math.ceil((kernelBytes + limit) / lineBytes) + 2;
    const t0 = Math.floor(limit / lineBytes);
    t.diagnostic(`sent ${dropped.sent} events of ${lineBytes} bytes before the drop (allowed ${t0}..${most}); ${emitted} emitted`);
    assert.ok(dropped.sent >= t0 && dropped.sent <= most, `${dropped.sent} events sent before the drop, allowed ${t0}..${most}`);
    // It reads again within the linger: it gets every event it was sent, and the reason.
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.resume();
    await new Promise((r) => socket.once('close', r));
    const lines = received.trimEnd().split('\n').map((l) => JSON.parse(l) as AnyReply);
    assert.equal(lines.filter((l) => l.event !== undefined).length, dropped.sent, 'every event sent arrives');
    const last = lines.at(-1)!;
    assert.equal(last.end.reason, 'too_slow');
    assert.match(last.end.message, new RegExp(`bytes of events unread \\(limit ${limit}\\)`));
    assert.equal(server.subscriberCount, 0);
  });

  it('caps subscribers below the connection limit, never evicts one, and status still gets in', async (t) => {
    const f = fixture(t);
    const events = new TestEvents();
    const server = await f.start({ events, maxConnections: 8 });
    const subscribers: RawClient[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await f.connect();
      assert.equal((await subscribed(c)).ok, true);
      subscribers.push(c);
    }
    const fifth = await f.connect();
    const refused = await subscribed(fifth);
    assert.deepEqual([refused.error.code], ['busy']);
    assert.match(refused.error.message, /too many event subscribers \(limit 4 of 8 connections\)/);
    // Fill every other slot with idle connections: a new one evicts an idle one, never a subscriber.
    for (let i = 0; i < 4; i++) await f.connect();
    for (let i = 0; i < 3; i++) {
      const status = await f.connect();
      status.request(i, 'status');
      assert.equal((await status.reply('status at the limit')).ok, true);
    }
    assert.equal(server.subscriberCount, 4);
    events.emit('still here');
    await waitFor(() => subscribers.every((c) => c.lines.length === 2), 'every subscriber to get the event');
    assert.ok(subscribers.every((c) => !c.closed));
  });

  it('ends when the client ends its side, and with `shutting_down` when the server closes', async (t) => {
    const f = fixture(t);
    const events = new TestEvents();
    const server = await f.start({ events });
    const leaving = await f.connect();
    await subscribed(leaving);
    const staying = await f.connect();
    await subscribed(staying);
    assert.equal(server.subscriberCount, 2);
    leaving.socket.end();
    await leaving.waitClosed();
    await waitFor(() => server.subscriberCount === 1 && events.listening === 1, 'the subscription to end with its client');
    await server.close();
    await staying.waitClosed();
    const last = JSON.parse(staying.lines.at(-1)!) as AnyReply;
    assert.deepEqual(last, { v: 1, end: { reason: 'shutting_down', message: 'the daemon is shutting down' } });
    assert.equal(events.listening, 0);
  });
});
