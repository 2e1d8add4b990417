import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { closestMatch, editDistance } from '../../src/config/suggest.js';

test('a transposition counts as one edit', () => {
  assert.equal(editDistance('memroy', 'memory'), 1);
  assert.equal(editDistance('memory', 'memory'), 0);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('the closest candidate is suggested, ignoring case', () => {
  assert.equal(closestMatch('memroy', ['worker', 'memory', 'restart', 'logs']), 'memory');
  assert.equal(closestMatch('Poll_Interval_MS', ['poll_interval_ms', 'cooldown_ms']), 'poll_interval_ms');
  assert.equal(closestMatch('warning', ['debug', 'info', 'warn', 'error']), 'warn');
});

test('nothing is suggested when every candidate is far away', () => {
  assert.equal(closestMatch('colour', ['worker', 'memory', 'restart', 'logs']), undefined);
  assert.equal(closestMatch('x', ['log']), undefined);
});
