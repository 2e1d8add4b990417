// What commands print on stdout. The commands that print many lines (logs, events) write through
// commandOutput: to a terminal, control characters in the text (worker output may hold ESC, CR,
// NUL) are made visible; to a pipe or file it goes unchanged, for scripts. A reader that went away
// (`logs -n 200000 | head -1`: EPIPE) ends the output quietly, as for cat, and `onClosed` is
// called so that a follow stops too; any other write error is reported once and the command fails.
// The others print once, through writeOut, the same way about a reader gone.
import { writeSync } from 'node:fs';
import { escapeForTerminal } from '../log/terminal-text.js';
import { CliFailure, EXIT } from './exit-codes.js';

/** Writes text to `out`; `verbatim` text (e.g. JSON, escaped by its encoding) is never altered. */
export type OutputWrite = (text: string, verbatim?: boolean) => void;

/**
 * `onClosed` learns whether the output failed (true) or its reader went away (false): once, at the
 * first write error.
 */
export function commandOutput(out: NodeJS.WriteStream, command: string, onClosed: (failed: boolean) => void): OutputWrite {
  const toTerminal = out.isTTY === true;
  let closed = false;
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (closed) return;
    closed = true;
    onClosed(err.code !== 'EPIPE');
    if (err.code === 'EPIPE') return;
    process.stderr.write(`autopilotd: ${command}: cannot write the output: ${err.message}\n`);
    process.exitCode = EXIT.failure;
  });
  return (text, verbatim = false) => {
    if (closed) return;
    out.write(toTerminal && !verbatim ? escapeForTerminal(text) : text);
  };
}

/** For a non-blocking stdout that is full: the wait before the next try. */
const FULL_PIPE_WAIT = new Int32Array(new SharedArrayBuffer(4));

/**
 * A command's whole output, written to fd 1 at once: no stream is made for stdout (for a pipe that
 * is a socket object and ~0.5 ms of a start). A reader that went away (EPIPE: `status | true`)
 * ends the output quietly, as for cat; a stdout some other program made non-blocking is waited on
 * while it is full; any other failure is the command's.
 */
export function writeOut(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(1, bytes, done);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return;
      if (code === 'EAGAIN') {
        Atomics.wait(FULL_PIPE_WAIT, 0, 0, 1);
        continue;
      }
      throw new CliFailure(`cannot write the output: ${(err as Error).message}`, EXIT.failure);
    }
  }
}
