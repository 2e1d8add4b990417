// `logs --since WHEN`: a DURATION ago or an ISO 8601 date or time, local time without a zone (a
// date alone too: its local midnight), and a date or time that does not exist refused (exit 64)
// rather than rolled over. A zone west of UTC, so that local and UTC midnight differ.
process.env.TZ = 'America/New_York';

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSince } from '../../src/cli/option-values.js';
import { UsageError } from '../../src/cli/exit-codes.js';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);

test('--since without a zone is local time, a date alone its local midnight; with a zone, that zone', () => {
  assert.equal(new Date(2026, 0, 31).getTime() - Date.UTC(2026, 0, 31), 5 * 3_600_000, 'the test runs west of UTC');
  assert.equal(parseSince('2026-01-31', NOW), new Date(2026, 0, 31).getTime());
  assert.equal(parseSince('2026-01-31T12:00', NOW), new Date(2026, 0, 31, 12, 0).getTime());
  assert.equal(parseSince('2026-01-31 12:00:30.25', NOW), new Date(2026, 0, 31, 12, 0, 30, 250).getTime());
  assert.equal(parseSince('2026-01-31T12:00:00Z', NOW), Date.UTC(2026, 0, 31, 12));
  assert.equal(parseSince('2026-01-31T12:00:00+05:30', NOW), Date.UTC(2026, 0, 31, 6, 30));
  assert.equal(parseSince('2026-01-31T12:00:00-0100', NOW), Date.UTC(2026, 0, 31, 13));
  assert.equal(parseSince('2024-02-29', NOW), new Date(2024, 1, 29).getTime(), 'a leap day exists');
  assert.equal(parseSince('10m', NOW), NOW - 600_000);
  assert.equal(parseSince('1.5', NOW), NOW - 1500, 'a bare number is seconds, as every DURATION');
});

test('--since refuses a date or time that does not exist, as a usage error (exit 64)', () => {
  for (const when of ['2026-02-30', '2026-02-29', '2026-04-31', '2026-13-01', '2026-00-10', '2026-01-00', '2026-01-31T24:00', '2026-01-31T12:60', '2026-01-31T12:00:61', '2026-01-31T12:00+25:00', 'yesterday', '10x']) {
    assert.throws(() => parseSince(when, NOW), (err: unknown) => err instanceof UsageError && err.exitCode === 64 && err.message.includes(`got '${when}'`), when);
  }
});
