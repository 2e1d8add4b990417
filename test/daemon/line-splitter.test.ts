import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter } from '../../src/daemon/line-splitter.js';

/** A splitter whose lines land in `lines`, and how many calls handed them on. */
function splitter(maxLineChars?: number): { s: LineSplitter; lines: string[]; calls: number[] } {
  const lines: string[] = [];
  const calls: number[] = [];
  const s = new LineSplitter((batch) => {
    calls.push(batch.length);
    lines.push(...batch);
  }, maxLineChars);
  return { s, lines, calls };
}

test('chunks are cut into whole lines, a partial line waits for its end', () => {
  const { s, lines } = splitter();
  s.push(Buffer.from('one\ntw'));
  assert.deepEqual(lines, ['one']);
  s.push(Buffer.from('o\nthree'));
  assert.deepEqual(lines, ['one', 'two']);
  s.flush();
  assert.deepEqual(lines, ['one', 'two', 'three']);
});

test('the lines of a chunk are handed on in one call (issue #15)', () => {
  const { s, lines, calls } = splitter();
  s.push(Buffer.from('a\nb\nc\nd'));
  s.push(Buffer.from('\n'));
  assert.deepEqual(lines, ['a', 'b', 'c', 'd']);
  assert.deepEqual(calls, [3, 1]);
});

test('a UTF-8 character split across chunks stays whole', () => {
  const { s, lines } = splitter();
  const bytes = Buffer.from('größe €\n');
  s.push(bytes.subarray(0, 3));
  s.push(bytes.subarray(3, 9));
  s.push(bytes.subarray(9));
  assert.deepEqual(lines, ['größe €']);
});

test('output without newlines is cut at the limit instead of growing the daemon', () => {
  const { s, lines } = splitter(10);
  s.push(Buffer.from('x'.repeat(25)));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^x{10} \[line cut at 10 characters; the rest of it dropped\]$/);
});

test('the rest of a cut line, up to its newline, is dropped rather than logged as lines of its own (issue #15)', () => {
  const { s, lines } = splitter(10);
  s.push(Buffer.from('x'.repeat(25)));
  s.push(Buffer.from('y'.repeat(30)));
  s.push(Buffer.from('yyy\nnext\nz'.repeat(1)));
  s.flush();
  assert.deepEqual(lines, ['x'.repeat(10) + ' [line cut at 10 characters; the rest of it dropped]', 'next', 'z']);
});

test('a long line that ends within its chunk is cut too (issue #15)', () => {
  const { s, lines } = splitter(10);
  s.push(Buffer.from(`short\n${'x'.repeat(40)}\nafter\n`));
  assert.deepEqual(lines, ['short', 'x'.repeat(10) + ' [line cut at 10 characters; the rest of it dropped]', 'after']);
});
