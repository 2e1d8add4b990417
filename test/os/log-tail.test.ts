import assert from 'node:assert/strict';
import { appendFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLastLines } from '../../src/os/log-tail.js';
import { scratchArea } from '../helpers/scratch.js';

const { freshDir } = scratchArea('autopilotd-logtail-test-');

test('readLastLines returns the last N lines across rotated files, oldest first', () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(`${path}.2`, 'a\nb\n');
  writeFileSync(`${path}.1`, 'c\nd\n');
  writeFileSync(path, 'e\nf\n');
  assert.deepEqual(readLastLines(path, 3, 3), ['d', 'e', 'f']);
  assert.deepEqual(readLastLines(path, 5, 3), ['b', 'c', 'd', 'e', 'f']);
  assert.deepEqual(readLastLines(path, 100, 3), ['a', 'b', 'c', 'd', 'e', 'f']);
  assert.deepEqual(readLastLines(path, 100, 2), ['c', 'd', 'e', 'f'], 'files beyond maxFiles are not read');
  assert.deepEqual(readLastLines(path, 0, 3), []);
});

test('readLastLines skips missing files and keeps empty lines', () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  assert.deepEqual(readLastLines(path, 10, 3), []);
  writeFileSync(`${path}.2`, 'old\n\n');
  writeFileSync(path, 'new\n');
  assert.deepEqual(readLastLines(path, 10, 3), ['old', '', 'new']);
});

test('readLastLines leaves out a line still being written, but not the cut-off end of a rotated file', () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(`${path}.1`, 'a\nunfinished');
  writeFileSync(path, 'b\nhalf a li');
  assert.deepEqual(readLastLines(path, 10, 2), ['a', 'unfinished', 'b']);
});

test('readLastLines finds lines that span its read chunks', () => {
  const path = join(freshDir(), 'daemon.log');
  const lines = Array.from({ length: 3000 }, (_, i) => `${i} ${'w'.repeat(i % 211)}`);
  writeFileSync(path, lines.join('\n') + '\n');
  assert.deepEqual(readLastLines(path, 1234, 1), lines.slice(-1234));
  assert.deepEqual(readLastLines(path, 1, 1), lines.slice(-1));
});

test('readLastLines reads from the end, not whole files (an 8 GiB sparse file takes no time)', () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, '');
  truncateSync(path, 8 * 1024 ** 3); // Sparse: no disk used, but too big to read whole.
  appendFileSync(path, '\nx\ny\nz\n');
  const startedAtMs = Date.now();
  assert.deepEqual(readLastLines(path, 2, 1), ['y', 'z']);
  assert.ok(Date.now() - startedAtMs < 2000);
});

