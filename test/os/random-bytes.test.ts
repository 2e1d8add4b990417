// Random bytes from /dev/urandom, which the daemon reads instead of loading node:crypto (#18 RSS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from '../../src/os/random-bytes.js';

test('randomBytes returns n bytes from the kernel, a different draw each time', () => {
  for (const n of [0, 1, 4, 9, 4096]) assert.equal(randomBytes(n).length, n);
  const seen = new Set(Array.from({ length: 50 }, () => randomBytes(9).toString('base64url')));
  assert.equal(seen.size, 50, 'no 72-bit id repeats');
  // Every byte value turns up in 64 KiB of draws (a stuck or constant source would not).
  assert.equal(new Set(randomBytes(65_536)).size, 256);
});
