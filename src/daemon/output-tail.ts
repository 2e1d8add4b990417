// The crash context (issue #17): the last lines of one run's output, both streams in the order they
// were read, kept in memory only so that `status` can answer "why did it die at 3 a.m." without the
// log. Bounded twice: a ring of `capacity` lines, each cut at TAIL_LINE_MAX_BYTES, so a worker that
// prints without end costs at most capacity × 4 KiB here.

import type { WorkerOutputLine } from '../control/protocol.js';

export const TAIL_LINE_MAX_BYTES = 4096;
// A UTF-16 code unit takes at most 3 bytes of UTF-8 (a surrogate pair, two units, takes 4): a line
// this short cannot be over the limit, and most lines skip the byte count.
const SURELY_SHORT_CHARS = Math.floor(TAIL_LINE_MAX_BYTES / 3);

export class OutputTail {
  private readonly ring: WorkerOutputLine[] = [];
  /** Where the next line goes once the ring is full. */
  private next = 0;

  constructor(readonly capacity: number) {}

  /** Lines of one chunk (no newlines in them), as the line splitter hands them on. */
  push(stream: WorkerOutputLine['stream'], lines: readonly string[]): void {
    if (this.capacity === 0) return;
    // Of a large batch only the last `capacity` lines can stay: the rest are not even cut.
    for (let i = Math.max(0, lines.length - this.capacity); i < lines.length; i += 1) {
      const entry = cutLine(stream, lines[i]!);
      if (this.ring.length < this.capacity) {
        this.ring.push(entry);
      } else {
        this.ring[this.next] = entry;
        this.next = (this.next + 1) % this.capacity;
      }
    }
  }

  /** Oldest first. */
  lines(): WorkerOutputLine[] {
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}

function cutLine(stream: WorkerOutputLine['stream'], line: string): WorkerOutputLine {
  if (line.length <= SURELY_SHORT_CHARS || Buffer.byteLength(line) <= TAIL_LINE_MAX_BYTES) return { stream, line, cut: false };
  const bytes = Buffer.from(line);
  // Back to the first byte of a character, so no half character is left at the end.
  let end = TAIL_LINE_MAX_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return { stream, line: bytes.subarray(0, end).toString('utf8'), cut: true };
}
