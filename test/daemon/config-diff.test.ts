// The `configuration reloaded` line lists what changed: key paths, old -> new, values cut short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANGES_LISTED, CHANGE_VALUE_CHARS, configChanges } from '../../src/daemon/config-diff.js';
import { renderEvent } from '../../src/log/events.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { EventJournal } from '../../src/daemon/event-journal.js';
import { Logger, type LogRecord } from '../../src/log/logger.js';

test('changed leaves are listed by key path with both values, in key order; equal arrays are no change', () => {
  const before: Config = structuredClone(DEFAULTS) as Config;
  const after = structuredClone(before);
  after.worker.restart = 'on-failure';
  after.log_level = 'debug';
  after.memory.poll_interval_ms = before.memory.poll_interval_ms + 1;
  const changes = configChanges(before, after);
  assert.deepEqual(changes.map((c) => c.key), ['log_level', 'memory.poll_interval_ms', 'worker.restart']);
  assert.deepEqual(changes[0], { key: 'log_level', from: `"${before.log_level}"`, to: '"debug"' });
  assert.equal(changes[2]!.to, '"on-failure"');
  assert.deepEqual(configChanges(before, structuredClone(before)), []);
  const { text } = renderEvent({ kind: 'config-reloaded', path: '/etc/a.toml', changes });
  assert.match(text, /^configuration reloaded: log_level "\w+" -> "debug", memory\.poll_interval_ms \d+ -> \d+, worker\.restart "[\w-]+" -> "on-failure" config=\/etc\/a\.toml$/);
  assert.equal(renderEvent({ kind: 'config-reloaded', path: null, changes: [] }).text, 'configuration reloaded: nothing changed config="(defaults)"');
});

test('long values are cut, and past the listed number the rest are counted', () => {
  const long = { a: 'x'.repeat(500) };
  const [change] = configChanges({ a: 'short' }, long);
  assert.equal(change!.to!.length, CHANGE_VALUE_CHARS);
  assert.ok(change!.to!.endsWith('...'));
  const many = Object.fromEntries(Array.from({ length: CHANGES_LISTED + 5 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]));
  const changes = configChanges({}, many);
  assert.equal(changes.length, CHANGES_LISTED + 1);
  assert.deepEqual(changes.at(-1), { key: '(and 5 more)', from: '', to: '' });
  assert.match(renderEvent({ kind: 'config-reloaded', path: null, changes }).text, /k19 \(unset\) -> 19, \(and 5 more\) config=/);
});

test('a reload never shows a value of worker.env or of a command line: the key and what happened only', () => {
  const secret = 'sk-live-0123456789abcdef';
  const token = 'tok-9f8e7d6c5b4a';
  const before: Config = structuredClone(DEFAULTS) as Config;
  before.worker.env = { API_KEY: `${secret}-old`, GONE: `${secret}-gone`, SAME: `${secret}-same` };
  before.notify.command = ['curl', '-H', `Authorization: Bearer ${token}-old`, 'https://hooks.example'];
  const after = structuredClone(before);
  after.worker.env = { API_KEY: `${secret}-new`, NEW_KEY: `${secret}-added`, SAME: `${secret}-same` };
  after.notify.command = ['curl', '-H', `Authorization: Bearer ${token}-new`, 'https://hooks.example'];
  after.worker.command = ['node', 'agent.mjs', `--token=${token}`];
  after.health.probe_command = ['probe', `--token=${token}`];

  const changes = configChanges(before, after);
  assert.deepEqual(changes, [
    { key: 'health.probe_command', hidden: 'changed' },
    { key: 'notify.command', hidden: 'changed' },
    { key: 'worker.command', hidden: 'changed' },
    { key: 'worker.env.API_KEY', hidden: 'changed' },
    { key: 'worker.env.GONE', hidden: 'removed' },
    { key: 'worker.env.NEW_KEY', hidden: 'added' },
  ]);

  // Through the logger as the daemon emits it: the file line, the subscribers' event, the record.
  const written: string[] = [];
  const logger = new Logger({ write: (line) => written.push(line) }, 'plain', 'info');
  const journal = new EventJournal(logger);
  const records: LogRecord[] = [];
  logger.subscribe((r) => records.push(r));
  logger.emit({ kind: 'config-reloaded', path: '/etc/a.toml', changes });
  journal.close();
  assert.equal(written.length, 1);
  assert.match(written[0]!, / configuration reloaded: health\.probe_command changed, notify\.command changed, worker\.command changed, worker\.env\.API_KEY changed, worker\.env\.GONE removed, worker\.env\.NEW_KEY added config=\/etc\/a\.toml\n$/);
  const everything = JSON.stringify({ written, events: journal.backlog(), records });
  for (const s of [secret, token, 'sk-', 'Bearer']) assert.ok(!everything.includes(s), `${s} leaked: ${everything}`);

  // A whole env table that appears or goes is listed key by key too, never as one literal.
  const whole = configChanges({ worker: {} }, { worker: { env: { API_KEY: secret } } });
  assert.deepEqual(whole, [{ key: 'worker.env.API_KEY', hidden: 'added' }]);
});
