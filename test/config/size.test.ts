import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeSize, parseSize } from '../../src/config/size.js';

const GOOD: Array<[string, number]> = [
  ['123', 123],
  ['0', 0],
  ['2GiB', 2 * 1024 ** 3],
  ['500MB', 500_000_000],
  ['512MiB', 512 * 1024 ** 2],
  ['1.5GiB', 1_610_612_736],
  ['100KiB', 102_400],
  ['1.1MB', 1_100_000],
  ['1.005MB', 1_005_000],
  ['7b', 7],
  ['2 gib', 2 * 1024 ** 3],
  ['3KB', 3000],
  ['1TiB', 1024 ** 4],
  ['2tb', 2_000_000_000_000],
];

for (const [text, bytes] of GOOD) {
  test(`the size "${text}" is ${bytes} bytes`, () => {
    assert.deepEqual(parseSize(text), { ok: true, bytes });
  });
}

const BAD: Array<[string, RegExp]> = [
  ['', /not a number/],
  ['GiB', /not a number/],
  ['-1GiB', /not a number/],
  ['1e9', /not a number/],
  ['2 gigs', /unknown unit "gigs"/],
  ['5M', /unknown unit "M"/],
  ['1.5B', /not a whole number of bytes/],
  ['1.1KiB', /not a whole number of bytes/],
  ['.5GiB', /not a number/],
  ['1,5GiB', /not a number/],
  ['9999999TiB', /too large/],
];

for (const [text, reason] of BAD) {
  test(`the size "${text}" is rejected with a reason`, () => {
    const parsed = parseSize(text);
    assert.equal(parsed.ok, false);
    if (!parsed.ok) assert.match(parsed.reason, reason);
  });
}

test('sizes are described in the largest binary unit that divides them into quarters', () => {
  assert.equal(describeSize(2 * 1024 ** 3), '2 GiB');
  assert.equal(describeSize(1_610_612_736), '1.5 GiB');
  assert.equal(describeSize(524_288_000), '500 MiB');
  assert.equal(describeSize(1000), '1000 B');
});
