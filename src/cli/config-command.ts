// `autopilotd config check|show`.

import { formatConfigShow } from '../config/show.js';
import { loadForCommand, type ParsedCommand } from './args.js';
import { EXIT, UsageError } from './exit-codes.js';

export async function configCommand(p: ParsedCommand): Promise<number> {
  const [action, ...extra] = p.positionals;
  if (extra.length > 0) throw new UsageError(`config: unexpected argument '${extra[0]}'`);
  if (action !== 'check' && action !== 'show') {
    throw new UsageError(action === undefined ? 'config: say check or show' : `config: unknown action '${action}' (check or show)`);
  }
  const loaded = await loadForCommand(p);
  if (action === 'show') {
    process.stdout.write(formatConfigShow(loaded));
  } else {
    process.stdout.write(`configuration is valid (${loaded.path ?? 'no file; built-in defaults'})\n`);
  }
  return EXIT.ok;
}
