// The lines of a `subscribe` stream: encoded and parsed back, versioned, and anything else refused.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeEnd, encodeEvent, parseStreamLine, parseSubscribeArgs, type StreamEvent } from '../../src/control/events-protocol.js';
import { encodeReply, okReply } from '../../src/control/protocol.js';

const event: StreamEvent = { seq: 7, at: '2025-01-01T00:00:00.000Z', level: 'warn', kind: 'worker-exited', text: 'worker exited with code 1 "quoted"\\n' };

test('events, ends and replies parse back to what was encoded', () => {
  assert.equal(encodeEvent(event), `{"v":1,"event":${JSON.stringify(event)}}\n`);
  assert.deepEqual(parseStreamLine(encodeEvent(event).trimEnd()), { type: 'event', event });
  assert.deepEqual(parseStreamLine(encodeEvent({ ...event, kind: null }).trimEnd()), { type: 'event', event: { ...event, kind: null } });
  const end = { reason: 'too_slow' as const, message: 'dropped' };
  assert.deepEqual(parseStreamLine(encodeEnd(end).trimEnd()), { type: 'end', end });
  const reply = okReply(1, { backlog: 0, follow: true, max_buffered_bytes: 1 });
  assert.deepEqual(parseStreamLine(encodeReply(reply).trimEnd()), { type: 'reply', reply });
});

test('lines of another version or shape are failures, never events', () => {
  for (const line of [
    'not json',
    '[]',
    `{"v":2,"event":${JSON.stringify(event)}}`,
    `{"event":${JSON.stringify(event)}}`,
    `{"v":1,"event":${JSON.stringify({ ...event, seq: '7' })}}`,
    `{"v":1,"event":${JSON.stringify({ ...event, level: 'loud' })}}`,
    `{"v":1,"event":${JSON.stringify({ ...event, text: undefined })}}`,
    '{"v":1,"end":{"reason":"x"}}',
    '{"v":1}',
  ]) {
    const parsed = parseStreamLine(line);
    assert.ok('failed' in parsed, `${line} -> ${JSON.stringify(parsed)}`);
  }
});

test('subscribe args: follow defaults to true and must be a boolean', () => {
  assert.deepEqual(parseSubscribeArgs({}), { follow: true });
  assert.deepEqual(parseSubscribeArgs({ follow: false, other: 1 }), { follow: false });
  assert.ok('problem' in parseSubscribeArgs({ follow: 1 }));
});
