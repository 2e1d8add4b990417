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
  const { changes, omitted } = configChanges(before, after);
  assert.equal(omitted, 0);
  assert.deepEqual(changes.map((c) => c.key), ['log_level', 'memory.poll_interval_ms', 'worker.restart']);
  assert.deepEqual(changes[0], { key: 'log_level', from: `"${before.log_level}"`, to: '"debug"' });
  assert.equal(changes[2]!.to, '"on-failure"');
  assert.deepEqual(configChanges(before, structuredClone(before)), { changes: [], omitted: 0 });
  const { text } = renderEvent({ kind: 'config-reloaded', path: '/etc/a.toml', changes, omitted });
  assert.match(text, /^configuration reloaded: log_level "\w+" -> "debug", memory\.poll_interval_ms \d+ -> \d+, worker\.restart "[\w-]+" -> "on-failure" config=\/etc\/a\.toml$/);
  assert.equal(renderEvent({ kind: 'config-reloaded', path: null, changes: [], omitted: 0 }).text, 'configuration reloaded: nothing changed config="(defaults)"');
});

test('long values are cut, and past the listed number the rest are counted', () => {
  const long = { a: 'x'.repeat(500) };
  const [change] = configChanges({ a: 'short' }, long).changes;
  assert.equal(change!.to!.length, CHANGE_VALUE_CHARS);
  assert.ok(change!.to!.endsWith('...'));
  const many = Object.fromEntries(Array.from({ length: CHANGES_LISTED + 5 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]));
  const diff = configChanges({}, many);
  assert.equal(diff.changes.length, CHANGES_LISTED);
  assert.equal(diff.omitted, 5);
  assert.ok(diff.changes.every((c) => !c.key.includes('more')), 'the count is a field, not a made-up change');
  assert.match(renderEvent({ kind: 'config-reloaded', path: null, ...diff }).text, /k19 \(unset\) -> 19, \(and 5 more\) config=/);
});

test('two long values that differ past the cut are cut around the difference and never look equal', () => {
  const base = `/opt/agent/${'segment/'.repeat(12)}`;
  const { changes } = configChanges({ path: `${base}config-a.json` }, { path: `${base}config-b.json` });
  const [c] = changes;
  assert.ok(c !== undefined && c.hidden === undefined);
  assert.notEqual(c.from, c.to);
  assert.ok(c.from.length <= CHANGE_VALUE_CHARS && c.to.length <= CHANGE_VALUE_CHARS);
  assert.ok(c.from.includes('config-a.json') && c.to.includes('config-b.json'), `${c.from} / ${c.to}`);
  assert.ok(c.from.startsWith('...'));
  assert.match(renderEvent({ kind: 'config-reloaded', path: null, changes, omitted: 0 }).text, /^configuration reloaded: path \.\.\.\S+config-a\.json" -> \.\.\.\S+config-b\.json" config=/);
  // Long values differing in the middle: cut on both sides, still apart.
  const mid = configChanges({ v: `${'a'.repeat(100)}X${'b'.repeat(100)}` }, { v: `${'a'.repeat(100)}Y${'b'.repeat(100)}` }).changes[0]!;
  assert.equal(mid.from!.length, CHANGE_VALUE_CHARS);
  assert.ok(mid.from!.startsWith('...') && mid.from!.endsWith('...') && mid.from!.includes('X'));
  assert.notEqual(mid.from, mid.to);
  // One a prefix of the other.
  const tail = configChanges({ v: 'a'.repeat(100) }, { v: `${'a'.repeat(100)}b` }).changes[0]!;
  assert.notEqual(tail.from, tail.to);
  // A difference early on: cut at the end as before.
  const early = configChanges({ v: `X${'a'.repeat(100)}` }, { v: `Y${'a'.repeat(100)}` }).changes[0]!;
  assert.equal(early.from, `"X${'a'.repeat(CHANGE_VALUE_CHARS - 5)}...`);
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

  const { changes, omitted } = configChanges(before, after);
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
  logger.emit({ kind: 'config-reloaded', path: '/etc/a.toml', changes, omitted });
  journal.close();
  assert.equal(written.length, 1);
  assert.match(written[0]!, / configuration reloaded: health\.probe_command changed, notify\.command changed, worker\.command changed, worker\.env\.API_KEY changed, worker\.env\.GONE removed, worker\.env\.NEW_KEY added config=\/etc\/a\.toml\n$/);
  const everything = JSON.stringify({ written, events: journal.backlog(), records });
  for (const s of [secret, token, 'sk-', 'Bearer']) assert.ok(!everything.includes(s), `${s} leaked: ${everything}`);

  // A whole env table that appears or goes is listed key by key too, never as one literal.
  const whole = configChanges({ worker: {} }, { worker: { env: { API_KEY: secret } } }).changes;
  assert.deepEqual(whole, [{ key: 'worker.env.API_KEY', hidden: 'added' }]);
});
