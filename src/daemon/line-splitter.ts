// Cuts a byte stream into lines for the log, handed on a chunk's worth at a time (one call per
// chunk, not per line: a worker may print hundreds of thousands of lines a second, issue #15
// item 7). No line handed on is longer than `maxLineChars`: a longer one is cut there and marked,
// and the rest of it, up to its newline, is dropped, so a worker that prints without newlines
// neither grows the daemon's memory nor fills the log with one line's pieces.

import { StringDecoder } from 'node:string_decoder';

export class LineSplitter {
  private pending = '';
  /** The current line was cut: what comes before its newline is dropped. */
  private cutting = false;
  // Keeps a UTF-8 character split across two chunks whole.
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly onLines: (lines: string[]) => void, private readonly maxLineChars = 16384) {}

  push(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text === '') return;
    const lines = text.split('\n');
    const last = lines.pop() ?? '';
    const out: string[] = [];
    if (lines.length > 0) {
      // The first piece ends the line begun in earlier chunks.
      const first = lines[0]!;
      if (this.cutting) {
        lines.shift();
        this.cutting = false;
      } else {
        lines[0] = this.pending + first;
      }
      this.pending = '';
      for (const line of lines) out.push(line.length > this.maxLineChars ? this.cut(line) : line);
    }
    if (!this.cutting) {
      this.pending += last;
      if (this.pending.length > this.maxLineChars) {
        out.push(this.cut(this.pending));
        this.pending = '';
        this.cutting = true;
      }
    }
    if (out.length > 0) this.onLines(out);
  }

  /** Hands on an unfinished last line (the stream ended). */
  flush(): void {
    const rest = this.decoder.end();
    if (!this.cutting) this.pending += rest;
    if (this.pending !== '') this.onLines([this.pending.length > this.maxLineChars ? this.cut(this.pending) : this.pending]);
    this.pending = '';
    this.cutting = false;
  }

  private cut(line: string): string {
    return `${line.slice(0, this.maxLineChars)} [line cut at ${this.maxLineChars} characters; the rest of it dropped]`;
  }
}
