import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdDelay, parseHoldUntil } from '../../src/policy/hold-until.js';

test('a hold file names its time as ISO-8601 or as epoch seconds, blanks around it ignored', () => {
  const at = Date.UTC(2026, 11, 2, 4, 0, 0);
  const table: [string, number | null][] = [
    ['2026-12-02T04:00:00Z', at],
    ['2026-12-02T04:00:00.250Z', at + 250],
    ['2026-12-02T05:00:00+01:00', at],
    ['2026-12-02T05:00:00+0100', at],
    ['2026-12-02 04:00:00Z\n', at],
    ['  2026-12-02T04:00Z  ', at],
    ['2026-12-02', Date.UTC(2026, 11, 2)],
    [`${at / 1000}\n`, at],
    [`${at / 1000}.5`, at + 500],
    ['', null],
    ['tomorrow', null],
    ['in 3600 seconds', null],
    ['-5', null],
    ['1e10', null],
    ['2026-13-45T99:00:00Z', null],
    ['Tue, 02 Dec 2026 04:00:00 GMT', null],
  ];
  for (const [text, want] of table) assert.equal(parseHoldUntil(text), want, JSON.stringify(text));
});

test('the hold delay: the file\'s time when ahead, capped at hold_max_ms, else hold_ms', () => {
  const s = { hold_ms: 1000, hold_max_ms: 5000 };
  assert.deepEqual(holdDelay({ kind: 'at', inMs: 2500.2 }, s), { delayMs: 2501, basis: 'file', fallbackReason: null });
  assert.deepEqual(holdDelay({ kind: 'at', inMs: 5000 }, s), { delayMs: 5000, basis: 'file', fallbackReason: null });
  assert.deepEqual(holdDelay({ kind: 'at', inMs: 5001 }, s), { delayMs: 5000, basis: 'hold_max_ms', fallbackReason: null });
  assert.deepEqual(holdDelay({ kind: 'none' }, s), { delayMs: 1000, basis: 'hold_ms', fallbackReason: null });
  assert.match(holdDelay({ kind: 'at', inMs: -1 }, s).fallbackReason ?? '', /past/);
  assert.match(holdDelay({ kind: 'invalid', text: 'soon' }, s).fallbackReason ?? '', /neither an ISO-8601 time nor epoch seconds: "soon"/);
  assert.match(holdDelay({ kind: 'unreadable', reason: 'not a regular file' }, s).fallbackReason ?? '', /unreadable: not a regular file/);
});
