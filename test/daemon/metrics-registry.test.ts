// autopilotd_control_rejected_total counts requests and connections the control server refused,
// by the code the client was given: an idle connection closed after its timeout refused nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from '../../src/daemon/metrics-registry.js';
import { Logger } from '../../src/log/logger.js';

function rejected(events: Parameters<MetricsRegistry['controlEvent']>[0][]): Record<string, number> {
  const registry = new MetricsRegistry(new Logger({ write: () => {} }, 'plain', 'info'));
  try {
    for (const e of events) registry.controlEvent(e);
    return registry.counters({ logLinesDropped: 0, events: 0 }).controlRejected;
  } finally {
    registry.close();
  }
}

test('idle closes are not counted as rejected; a refusal at shutdown is counted as shutting_down', () => {
  const counts = rejected([
    { type: 'idle_timeout' },
    { type: 'idle_timeout' },
    { type: 'connection_rejected', reason: 'shutting_down', connections: 0 },
    { type: 'connection_rejected', reason: 'busy', connections: 16 },
    { type: 'request_timeout', bytes: 5 },
    { type: 'request_failed', code: 'bad_json', message: 'x' },
  ]);
  assert.equal(counts.timeout, 1, 'only the unfinished request line');
  assert.equal(counts.shutting_down, 1);
  assert.equal(counts.busy, 1);
  assert.equal(counts.bad_json, 1);
});
