// Passes the worker's piped output on to the daemon's own stdout or stderr (the foreground's
// terminal), byte for byte, keeping the backpressure an inherited descriptor had: when the
// terminal is full the worker's pipe is paused, so the worker blocks as it would on the terminal,
// and the daemon buffers nothing. A target that fails (EPIPE: the reader went away) is dropped for
// good, reported once, and every paused pipe resumes, so the worker is never held by it.
import type { Readable, Writable } from 'node:stream';

export class TerminalOutput {
  private broken = false;
  private readonly paused = new Set<Readable>();

  constructor(private readonly target: Writable, name: string, onProblem: (message: string) => void) {
    target.on('error', (err: Error) => {
      if (this.broken) return;
      this.broken = true;
      onProblem(`writing worker output to the daemon's ${name}: ${err.message}; worker output is no longer passed through`);
      this.resumeAll();
    });
    target.on('drain', () => this.resumeAll());
  }

  /** Writes `chunk`; pauses `source` until the target drains when it is full. */
  write(chunk: Buffer, source: Readable): void {
    if (this.broken) return;
    if (this.target.write(chunk)) return;
    if (!this.paused.has(source)) {
      this.paused.add(source);
      source.pause();
      // A destroyed pipe (the worker's tree is gone) needs no resume.
      source.once('close', () => this.paused.delete(source));
    }
  }

  private resumeAll(): void {
    for (const source of this.paused) source.resume();
    this.paused.clear();
  }
}
