// Cuts a byte stream into lines for the log, holding at most `maxLineBytes` of an unfinished line
// (a worker that prints without newlines must not grow the daemon's memory).

import { StringDecoder } from 'node:string_decoder';

export class LineSplitter {
  private pending = '';
  // Keeps a UTF-8 character split across two chunks whole.
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly onLine: (line: string) => void, private readonly maxLineBytes = 16384) {}

  push(chunk: Buffer): void {
    const text = this.pending + this.decoder.write(chunk);
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) this.onLine(line);
    if (this.pending.length > this.maxLineBytes) {
      this.onLine(`${this.pending.slice(0, this.maxLineBytes)} [line cut at ${this.maxLineBytes} bytes]`);
      this.pending = '';
    }
  }

  flush(): void {
    this.pending += this.decoder.end();
    if (this.pending !== '') this.onLine(this.pending);
    this.pending = '';
  }
}
