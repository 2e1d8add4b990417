// TerminalOutput: the foreground's pass-through keeps the terminal's backpressure, and a target
// that fails is dropped without holding the worker's pipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { TerminalOutput } from '../../src/os/terminal-output.js';

/** A target that takes one chunk and then holds its callback until `release()`. */
function slowTarget(): { target: Writable; written: Buffer[]; release(): void; fail(err: Error): void } {
  const written: Buffer[] = [];
  let pending: ((err?: Error | null) => void) | null = null;
  const target = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, callback) {
      written.push(chunk);
      pending = callback;
    },
  });
  return {
    target, written,
    release: () => { const cb = pending; pending = null; cb?.(); },
    fail: (err) => { const cb = pending; pending = null; cb?.(err); },
  };
}

test('a full target pauses the source until it drains, and the bytes arrive unchanged', async () => {
  const slow = slowTarget();
  const out = new TerminalOutput(slow.target, 'stdout', () => assert.fail('no problem expected'));
  const source = new PassThrough();
  const bytes = Buffer.from([0x74, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0xc3, 0xa9, 0x0a]); // t, ESC[31m, é, newline
  out.write(bytes, source);
  assert.equal(source.isPaused(), true, 'paused while the target is full');
  slow.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(source.isPaused(), false, 'resumed once it drained');
  assert.deepEqual(Buffer.concat(slow.written), bytes);
});

test('a target that fails is reported once, resumes the paused source, and takes nothing more', async () => {
  const slow = slowTarget();
  const problems: string[] = [];
  const out = new TerminalOutput(slow.target, 'stderr', (message) => problems.push(message));
  const source = new PassThrough();
  out.write(Buffer.from('a'), source);
  assert.equal(source.isPaused(), true);
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  slow.fail(epipe);
  await new Promise((r) => setImmediate(r));
  assert.equal(source.isPaused(), false, 'the worker is not held by a dead terminal');
  out.write(Buffer.from('b'), source);
  assert.equal(slow.written.length, 1);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /writing worker output to the daemon's stderr: write EPIPE; worker output is no longer passed through/);
});
