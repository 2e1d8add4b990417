// How a command line ends: its exit code, and its error in words. Shared by the CLI's entry
// (main.ts) and the detached daemon's (daemon-main.ts), so a daemon that fails early says so as
// `autopilotd start --foreground` would.

import { CliFailure, EXIT, UsageError } from './exit-codes.js';
import { escapeForTerminal } from '../log/terminal-text.js';

/**
 * Runs `run` on this process's arguments and sets process.exitCode from its result or its error.
 * An exit code already set non-zero stays: a write error on stdout (output-writer.ts) fails the
 * command even though the command itself went on to return 0 (`events > /dev/full`).
 */
export async function runProgram(run: (argv: string[]) => Promise<number>): Promise<void> {
  const code = await exitCodeOf(() => run(process.argv.slice(2)));
  const already = Number(process.exitCode ?? 0);
  process.exitCode = already !== 0 && code === 0 ? already : code;
}

/**
 * The exit code of `run`, its error written out. Each bundle reports its own errors: the other
 * bundle's classes (CliFailure, UsageError) are other classes to `instanceof`.
 */
export async function exitCodeOf(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    return reportError(err);
  }
}

/**
 * Error output. On a terminal its control characters are made visible: a failed `start` quotes
 * the last log lines, worker output included, and that must not drive the terminal (#14).
 */
function writeError(text: string): void {
  process.stderr.write(process.stderr.isTTY === true ? escapeForTerminal(text) : text);
}

function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    writeError(`autopilotd: ${err.message}\nTry 'autopilotd ${err.command === null ? '--help' : `help ${err.command}`}'.\n`);
    return err.exitCode;
  }
  const e = err as Error & { exitCode?: unknown; code?: unknown };
  if (e?.code === 'config_invalid' && typeof e.exitCode === 'number') {
    writeError(`autopilotd: invalid configuration:\n${e.message}\n`);
    return e.exitCode;
  }
  if (err instanceof CliFailure) {
    if (err.message) writeError(`autopilotd: ${err.message}\n`);
    return err.exitCode;
  }
  writeError(`autopilotd: internal error: ${e?.stack ?? String(err)}\n`);
  return EXIT.failure;
}
