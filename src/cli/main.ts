// The CLI entry point: parses the command line and hands off to one command module. Kept light:
// the daemon is imported only by `start`, so client commands load little.

import { VERSION } from '../version.js';
import { COMMAND_HELP, MAIN_HELP } from './help.js';
import { CliFailure, EXIT, UsageError } from './exit-codes.js';
import { parseCommandLine } from './command-line.js';
import { escapeForTerminal } from '../log/terminal-text.js';

async function run(argv: string[]): Promise<number> {
  const line = parseCommandLine(argv);
  if (line.kind === 'help') {
    process.stdout.write(line.command === null ? MAIN_HELP : COMMAND_HELP[line.command] ?? MAIN_HELP);
    return EXIT.ok;
  }
  if (line.kind === 'version') {
    process.stdout.write(`autopilotd ${VERSION}\n`);
    return EXIT.ok;
  }
  const { parsed } = line;
  switch (parsed.command) {
    case 'start': return (await import('./start.js')).startCommand(parsed);
    case 'config': return (await import('./config-command.js')).configCommand(parsed);
    case 'logs': return (await import('./logs.js')).logsCommand(parsed);
    case 'install-service': return (await import('./install-service.js')).installServiceCommand(parsed);
    case 'uninstall-service': return (await import('./install-service.js')).uninstallServiceCommand(parsed);
    default: return (await import('./control-commands.js')).controlCommand(parsed);
  }
}

async function main(): Promise<void> {
  let code: number;
  try {
    code = await run(process.argv.slice(2));
  } catch (err) {
    code = reportError(err);
  }
  process.exitCode = code;
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

void main();
