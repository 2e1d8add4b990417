// `autopilotd config check|show`.

import { ConfigError, formatProblem, type ConfigProblem } from '../config/errors.js';
import { formatConfigShow } from '../config/show.js';
import { closestMatch } from '../config/suggest.js';
import type { LoadedConfig } from '../config/types.js';
import { loadForCommand, type ParsedCommand } from './args.js';
import { EXIT, UsageError } from './exit-codes.js';
import { runtimeDirProblems, type RuntimeDirKey, type RuntimeDirPlan } from './runtime-dirs.js';
import { workerProblems } from './worker-check.js';
import { writeOut } from './output-writer.js';

const DIR_KEYS: readonly RuntimeDirKey[] = ['socket_path', 'pid_file', 'logs.dir'];

export async function configCommand(p: ParsedCommand): Promise<number> {
  const [action, ...extra] = p.positionals;
  if (extra.length > 0) throw new UsageError(`config: unexpected argument '${extra[0]}'`, 'config');
  if (action !== 'check' && action !== 'show') throw new UsageError(actionProblem(action), 'config');
  if (action === 'show') {
    writeOut(formatConfigShow(await loadForCommand(p)));
    return EXIT.ok;
  }
  const { loaded, warnings } = await loadChecked(p);
  writeWarnings(warnings);
  writeOut(`configuration is valid (${loaded.path ?? 'no file; built-in defaults'})\n`);
  return EXIT.ok;
}

function actionProblem(action: string | undefined): string {
  if (action === undefined) return 'config: say check or show';
  const near = closestMatch(action, ['check', 'show']);
  return `config: unknown action '${action}' (check or show)${near === undefined ? '' : `; did you mean '${near}'?`}`;
}

function writeWarnings(warnings: readonly ConfigProblem[]): void {
  for (const warning of warnings) process.stderr.write(`autopilotd: warning: ${formatProblem(warning)}\n`);
}

/**
 * The configuration, the directories it names checked as `start` will check them (nothing is
 * created) and the worker's spawn tried as `start` tries it: every problem at once, those of the
 * file, of the paths and of the worker. Warnings are printed before an error is thrown.
 */
async function loadChecked(p: ParsedCommand): Promise<{ loaded: LoadedConfig; warnings: ConfigProblem[] }> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadForCommand(p);
  } catch (err) {
    if (!(err instanceof ConfigError) || err.bestEffort === null) throw err;
    // A file that could not be read or parsed (key '') leaves the paths unknown: judge none of them.
    if (err.problems.some((problem) => problem.key === '')) throw err;
    const invalid = new Set(err.problems.map((problem) => problem.key));
    const more = runtimeDirProblems(err.bestEffort, planFor(DIR_KEYS.filter((key) => !invalid.has(key))));
    // worker.command[0] and worker.env.X are reported under keys of their own: any of them counts.
    const workerKeys = [...invalid].some((key) => key === 'working_dir' || key.startsWith('worker.command') || key.startsWith('worker.env'));
    if (!workerKeys) {
      const worker = workerProblems(err.bestEffort, process.env);
      more.push(...worker.errors);
      writeWarnings(worker.warnings);
    }
    throw more.length === 0 ? err : new ConfigError([...err.problems, ...more], err.bestEffort);
  }
  const problems = runtimeDirProblems(loaded, planFor(DIR_KEYS));
  const worker = workerProblems(loaded, process.env);
  problems.push(...worker.errors);
  if (problems.length > 0) {
    writeWarnings(worker.warnings);
    throw new ConfigError(problems, loaded);
  }
  return { loaded, warnings: worker.warnings };
}

function planFor(keys: readonly RuntimeDirKey[]): RuntimeDirPlan {
  return Object.fromEntries(keys.map((key) => [key, 'check'])) as RuntimeDirPlan;
}
