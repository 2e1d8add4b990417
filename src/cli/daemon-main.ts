// The daemon bundle's entry (dist/bin/daemon.cjs, scripts/bundle.mjs): `start` and the daemon in
// one bundle. The CLI loads it for `start`; a detached daemon runs it as its program, so that its
// process holds the configuration code once and not the CLI bundle beside it (~2 MiB of RSS,
// BENCHMARKS.md "Daemon memory").

import { parseCommandLine } from './command-line.js';
import { CliFailure, EXIT } from './exit-codes.js';
import { exitCodeOf, runProgram } from './program.js';
import { startCommand } from './start.js';
import type { ParsedCommand } from './args.js';

/** `start`, for the CLI: its errors are reported here, by this bundle's classes. */
export function runStart(p: ParsedCommand): Promise<number> {
  return exitCodeOf(() => startCommand(p));
}

/** Run as a program: only the command line `start` hands its detached daemon. */
export function runAsProgram(): Promise<void> {
  return runProgram(async (argv) => {
    const line = parseCommandLine(argv);
    if (line.kind !== 'run' || line.parsed.command !== 'start') {
      throw new CliFailure('daemon.cjs runs only the daemon that `autopilotd start` spawns; run autopilotd instead', EXIT.usage);
    }
    return startCommand(line.parsed);
  });
}
