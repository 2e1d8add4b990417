// The CLI entry point: parses the command line and hands off to one command module. Kept light:
// `start` and the daemon are in another bundle (dist/bin/daemon.cjs, scripts/bundle.mjs), loaded
// only by `start`, so client commands load little.

import { VERSION } from '../version.js';
import { COMMAND_HELP, MAIN_HELP } from './help.js';
import { EXIT } from './exit-codes.js';
import { parseCommandLine } from './command-line.js';
import { runProgram } from './program.js';
import { writeOut } from './output-writer.js';

async function run(argv: string[]): Promise<number> {
  const line = parseCommandLine(argv);
  if (line.kind === 'help') {
    writeOut(line.command === null ? MAIN_HELP : COMMAND_HELP[line.command] ?? MAIN_HELP);
    return EXIT.ok;
  }
  if (line.kind === 'version') {
    writeOut(`autopilotd ${VERSION}\n`);
    return EXIT.ok;
  }
  const { parsed } = line;
  switch (parsed.command) {
    case 'start': return (await import('./daemon-main.js')).runStart(parsed);
    case 'config': return (await import('./config-command.js')).configCommand(parsed);
    case 'logs': return (await import('./logs.js')).logsCommand(parsed);
    case 'install-service': return (await import('./install-service.js')).installServiceCommand(parsed);
    case 'uninstall-service': return (await import('./install-service.js')).uninstallServiceCommand(parsed);
    default: {
      if (parsed.command === 'status' || parsed.command === 'metrics') {
        const quick = await (await import('./quick-commands.js')).quickCommand(parsed);
        if (quick !== null) return quick;
      }
      return (await import('./control-commands.js')).controlCommand(parsed);
    }
  }
}

void runProgram(run);
