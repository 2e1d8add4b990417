// Output of the commands that print many lines (logs, events). To a terminal, control characters
// in the text (worker output may hold ESC, CR, NUL) are made visible; to a pipe or file it goes
// unchanged, for scripts. A reader that went away (`logs -n 200000 | head -1`: EPIPE) ends the
// output quietly, as for cat, and `onClosed` is called so that a follow stops too; any other write
// error is reported once and the command fails.
import { escapeForTerminal } from '../log/terminal-text.js';
import { EXIT } from './exit-codes.js';

/** Writes text to `out`; `verbatim` text (e.g. JSON, escaped by its encoding) is never altered. */
export type OutputWrite = (text: string, verbatim?: boolean) => void;

export function commandOutput(out: NodeJS.WriteStream, command: string, onClosed: () => void): OutputWrite {
  const toTerminal = out.isTTY === true;
  let closed = false;
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (closed) return;
    closed = true;
    onClosed();
    if (err.code === 'EPIPE') return;
    process.stderr.write(`autopilotd: ${command}: cannot write the output: ${err.message}\n`);
    process.exitCode = EXIT.failure;
  });
  return (text, verbatim = false) => {
    if (closed) return;
    out.write(toTerminal && !verbatim ? escapeForTerminal(text) : text);
  };
}
