// Every kind of control server event reaches the log in words, never as a raw structure (issue #19).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlServerEvent } from '../../src/control/server.js';
import { controlEventLog } from '../../src/daemon/control-events.js';
import { renderEvent } from '../../src/log/events.js';

// A Record over the type names: the compiler fails this test when a kind is added without a sample.
const SAMPLES: { [K in ControlServerEvent['type']]: Extract<ControlServerEvent, { type: K }> } = {
  request_failed: { type: 'request_failed', code: 'bad_json', message: 'request is not JSON' },
  handler_error: { type: 'handler_error', cmd: 'reload', message: 'boom' },
  handler_timeout: { type: 'handler_timeout', cmd: 'stop-worker', timeoutMs: 70_000 },
  idle_timeout: { type: 'idle_timeout' },
  request_timeout: { type: 'request_timeout', bytes: 12 },
  partial_line_dropped: { type: 'partial_line_dropped', bytes: 7 },
  reply_dropped: { type: 'reply_dropped', reason: 'client gone' },
  connection_error: { type: 'connection_error', errno: 'ECONNRESET', message: 'read ECONNRESET' },
  listening: { type: 'listening', socketPath: '/run/x.sock' },
  stale_socket_removed: { type: 'stale_socket_removed', socketPath: '/run/x.sock' },
  connection_rejected: { type: 'connection_rejected', reason: 'busy', connections: 64 },
  connection_evicted: { type: 'connection_evicted', idleMs: 900, connections: 64 },
  subscriber_dropped: { type: 'subscriber_dropped', bufferedBytes: 300_000, limitBytes: 262_144, sent: 10 },
  closed: { type: 'closed', socketPath: '/run/x.sock', unlinked: true },
};

test('every control server event has a human text: no JSON, no [object Object], no undefined', () => {
  for (const event of Object.values(SAMPLES)) {
    const { level, text } = renderEvent(controlEventLog(event));
    assert.doesNotMatch(text, /\{"|\[object |undefined/, `${event.type}: ${text}`);
    assert.ok(text.length > 10, `${event.type}: ${text}`);
    assert.ok(['debug', 'warn'].includes(level), `${event.type} at ${level}`);
  }
  assert.equal(renderEvent(controlEventLog(SAMPLES.connection_error)).text, 'control: connection error ECONNRESET: read ECONNRESET');
  assert.equal(renderEvent(controlEventLog(SAMPLES.idle_timeout)).level, 'debug', 'routine events stay out of the info log');
  assert.equal(renderEvent(controlEventLog({ type: 'connection_rejected', reason: 'shutting_down', connections: 0 })).text, 'control: connection refused: shutting_down (0 open)');
});
