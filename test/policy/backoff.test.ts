import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, isFailureBudgetSpent, isStableRun, type BackoffSettings } from '../../src/policy/backoff.js';

const defaults: BackoffSettings = {
  initial_backoff_ms: 1000,
  max_backoff_ms: 300_000,
  backoff_multiplier: 2,
  max_consecutive_restarts: 10,
  stable_after_ms: 60_000,
};

test('the default schedule doubles from 1 s and caps at 5 min', () => {
  const delays = Array.from({ length: 12 }, (_, i) => backoffDelayMs(i + 1, defaults));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000, 300000]);
});

test('a multiplier of 1 gives a constant delay', () => {
  const s = { ...defaults, backoff_multiplier: 1 };
  assert.deepEqual([1, 2, 7].map((n) => backoffDelayMs(n, s)), [1000, 1000, 1000]);
});

test('fractional multipliers round to whole milliseconds', () => {
  const s = { ...defaults, initial_backoff_ms: 100, backoff_multiplier: 1.5 };
  assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelayMs(n, s)), [100, 150, 225, 338]);
});

test('a huge failure count stays at the cap instead of overflowing', () => {
  assert.equal(backoffDelayMs(10_000, defaults), 300_000);
  assert.equal(backoffDelayMs(Number.MAX_SAFE_INTEGER, { ...defaults, backoff_multiplier: 10 }), 300_000);
});

test('a count below one is treated as the first failure', () => {
  assert.equal(backoffDelayMs(0, defaults), 1000);
  assert.equal(backoffDelayMs(-3, defaults), 1000);
});

test('a cap below the initial delay wins', () => {
  assert.equal(backoffDelayMs(1, { ...defaults, initial_backoff_ms: 500, max_backoff_ms: 200 }), 200);
});

test('a run is stable from exactly stable_after_ms on', () => {
  assert.equal(isStableRun(59_999, defaults), false);
  assert.equal(isStableRun(60_000, defaults), true);
  assert.equal(isStableRun(61_000, defaults), true);
});

test('the failure budget is spent at exactly max_consecutive_restarts', () => {
  assert.equal(isFailureBudgetSpent(9, defaults), false);
  assert.equal(isFailureBudgetSpent(10, defaults), true);
  assert.equal(isFailureBudgetSpent(11, defaults), true);
});
