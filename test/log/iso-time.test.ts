import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from '../../src/log/iso-time.js';

test('isoTime writes what toISOString writes', () => {
  const day = 86_400_000;
  const samples = [0, 1, 9, 10, 99, 100, 999, Date.now(), -1, -day, 951_782_400_000 /* 2000-02-29 */, 253_402_300_799_999 /* 9999-12-31 */, -62_167_219_200_000 /* 0000-01-01 */];
  for (let ms = -2 * 365 * day; ms < 80 * 365 * day; ms += 7 * day + 3_723_456) samples.push(ms);
  for (const ms of samples) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
});

test('isoTime follows toISOString outside years 0000-9999 and for an invalid time', () => {
  for (const ms of [253_402_300_800_000, -62_167_219_200_001, 8.64e15]) assert.equal(isoTime(ms), new Date(ms).toISOString());
  assert.throws(() => isoTime(Number.NaN), RangeError);
  assert.throws(() => isoTime(8.64e15 + 1), RangeError);
});
