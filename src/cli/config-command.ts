// `autopilotd config check|show`.

import { ConfigError } from '../config/errors.js';
import { formatConfigShow } from '../config/show.js';
import type { LoadedConfig } from '../config/types.js';
import { loadForCommand, type ParsedCommand } from './args.js';
import { EXIT, UsageError } from './exit-codes.js';
import { runtimeDirProblems, type RuntimeDirKey, type RuntimeDirPlan } from './runtime-dirs.js';

const DIR_KEYS: readonly RuntimeDirKey[] = ['socket_path', 'pid_file', 'logs.dir'];

export async function configCommand(p: ParsedCommand): Promise<number> {
  const [action, ...extra] = p.positionals;
  if (extra.length > 0) throw new UsageError(`config: unexpected argument '${extra[0]}'`);
  if (action !== 'check' && action !== 'show') {
    throw new UsageError(action === undefined ? 'config: say check or show' : `config: unknown action '${action}' (check or show)`);
  }
  if (action === 'show') {
    process.stdout.write(formatConfigShow(await loadForCommand(p)));
    return EXIT.ok;
  }
  const loaded = await loadChecked(p);
  process.stdout.write(`configuration is valid (${loaded.path ?? 'no file; built-in defaults'})\n`);
  return EXIT.ok;
}

/**
 * The configuration, and the directories it names checked as `start` will check them (nothing is
 * created): every problem at once, those of the file and those of the paths.
 */
async function loadChecked(p: ParsedCommand): Promise<LoadedConfig> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadForCommand(p);
  } catch (err) {
    if (!(err instanceof ConfigError) || err.bestEffort === null) throw err;
    // A file that could not be read or parsed (key '') leaves the paths unknown: judge none of them.
    if (err.problems.some((problem) => problem.key === '')) throw err;
    const invalid = new Set(err.problems.map((problem) => problem.key));
    const more = runtimeDirProblems(err.bestEffort, planFor(DIR_KEYS.filter((key) => !invalid.has(key))));
    throw more.length === 0 ? err : new ConfigError([...err.problems, ...more], err.bestEffort);
  }
  const problems = runtimeDirProblems(loaded, planFor(DIR_KEYS));
  if (problems.length > 0) throw new ConfigError(problems, loaded);
  return loaded;
}

function planFor(keys: readonly RuntimeDirKey[]): RuntimeDirPlan {
  return Object.fromEntries(keys.map((key) => [key, 'check'])) as RuntimeDirPlan;
}
