// The `configuration reloaded` line lists what changed: key paths, old -> new, values cut short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANGES_LISTED, CHANGE_VALUE_CHARS, configChanges } from '../../src/daemon/config-diff.js';
import { renderEvent } from '../../src/log/events.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';

test('changed leaves are listed by key path with both values, in key order; equal arrays are no change', () => {
  const before: Config = structuredClone(DEFAULTS) as Config;
  const after = structuredClone(before);
  after.worker.command = ['node', 'agent.mjs'];
  after.log_level = 'debug';
  after.memory.poll_interval_ms = before.memory.poll_interval_ms + 1;
  const changes = configChanges(before, after);
  assert.deepEqual(changes.map((c) => c.key), ['log_level', 'memory.poll_interval_ms', 'worker.command']);
  assert.deepEqual(changes[0], { key: 'log_level', from: `"${before.log_level}"`, to: '"debug"' });
  assert.equal(changes[2]!.to, '["node", "agent.mjs"]');
  assert.deepEqual(configChanges(before, structuredClone(before)), []);
  const { text } = renderEvent({ kind: 'config-reloaded', path: '/etc/a.toml', changes });
  assert.match(text, /^configuration reloaded: log_level "\w+" -> "debug", memory\.poll_interval_ms \d+ -> \d+, worker\.command .* -> \["node", "agent\.mjs"\] config=\/etc\/a\.toml$/);
  assert.equal(renderEvent({ kind: 'config-reloaded', path: null, changes: [] }).text, 'configuration reloaded: nothing changed config="(defaults)"');
});

test('long values are cut, and past the listed number the rest are counted', () => {
  const long = { a: 'x'.repeat(500) };
  const [change] = configChanges({ a: 'short' }, long);
  assert.equal(change!.to.length, CHANGE_VALUE_CHARS);
  assert.ok(change!.to.endsWith('...'));
  const many = Object.fromEntries(Array.from({ length: CHANGES_LISTED + 5 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]));
  const changes = configChanges({}, many);
  assert.equal(changes.length, CHANGES_LISTED + 1);
  assert.deepEqual(changes.at(-1), { key: '(and 5 more)', from: '', to: '' });
  assert.match(renderEvent({ kind: 'config-reloaded', path: null, changes }).text, /k19 \(unset\) -> 19, \(and 5 more\) config=/);
});
