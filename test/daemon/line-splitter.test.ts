import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter } from '../../src/daemon/line-splitter.js';

test('chunks are cut into whole lines, a partial line waits for its end', () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  s.push(Buffer.from('one\ntw'));
  assert.deepEqual(lines, ['one']);
  s.push(Buffer.from('o\nthree'));
  assert.deepEqual(lines, ['one', 'two']);
  s.flush();
  assert.deepEqual(lines, ['one', 'two', 'three']);
});

test('a UTF-8 character split across chunks stays whole', () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  const bytes = Buffer.from('größe €\n');
  s.push(bytes.subarray(0, 3));
  s.push(bytes.subarray(3, 9));
  s.push(bytes.subarray(9));
  assert.deepEqual(lines, ['größe €']);
});

test('output without newlines is cut at the limit instead of growing the daemon', () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), 10);
  s.push(Buffer.from('x'.repeat(25)));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^x{10} \[line cut at 10 bytes\]$/);
});
