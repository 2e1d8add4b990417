import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputTail, TAIL_LINE_MAX_BYTES } from '../../src/daemon/output-tail.js';

test('the tail keeps the last lines of both streams in the order they came, each marked with its stream', () => {
  const tail = new OutputTail(3);
  tail.push('stdout', ['a', 'b']);
  assert.deepEqual(tail.lines(), [{ stream: 'stdout', line: 'a', cut: false }, { stream: 'stdout', line: 'b', cut: false }]);
  tail.push('stderr', ['c']);
  tail.push('stdout', ['d']);
  tail.push('stderr', ['e']);
  assert.deepEqual(tail.lines().map((l) => `${l.stream}:${l.line}`), ['stderr:c', 'stdout:d', 'stderr:e']);
});

test('a batch larger than the ring leaves only its last lines', () => {
  const tail = new OutputTail(4);
  tail.push('stdout', ['x']);
  tail.push('stderr', Array.from({ length: 10_000 }, (_, i) => `line ${i}`));
  assert.deepEqual(tail.lines().map((l) => l.line), ['line 9996', 'line 9997', 'line 9998', 'line 9999']);
  tail.push('stdout', ['y']);
  assert.deepEqual(tail.lines().map((l) => l.line), ['line 9997', 'line 9998', 'line 9999', 'y']);
});

test('a capacity of 0 keeps nothing', () => {
  const tail = new OutputTail(0);
  tail.push('stderr', ['boom']);
  assert.deepEqual(tail.lines(), []);
});

test('a line over 4 KiB of UTF-8 is cut at a character boundary and marked', () => {
  const tail = new OutputTail(5);
  const exact = 'a'.repeat(TAIL_LINE_MAX_BYTES);
  // 1365 three-byte characters = 4095 bytes, then a four-byte one across the limit.
  const straddling = `${'€'.repeat(1365)}😀tail`;
  const long = 'b'.repeat(100_000);
  tail.push('stdout', [exact, straddling, long]);
  const [a, b, c] = tail.lines();
  assert.deepEqual(a, { stream: 'stdout', line: exact, cut: false });
  assert.equal(b!.cut, true);
  assert.equal(b!.line, '€'.repeat(1365), 'the emoji that would pass the limit is left out whole');
  assert.ok(Buffer.byteLength(b!.line) <= TAIL_LINE_MAX_BYTES);
  assert.equal(c!.line, 'b'.repeat(TAIL_LINE_MAX_BYTES));
  assert.equal(c!.cut, true);
});
