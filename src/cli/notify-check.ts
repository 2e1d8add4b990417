// notify.command, tried on paper before anything starts, as worker-check.ts does for the worker: a
// program that does not resolve is a configuration error (exit 78), or every notification would
// fail in the log only, where nobody looks while waiting to be notified.
import type { ConfigProblem } from '../config/errors.js';
import type { LoadedConfig } from '../config/types.js';
import { checkSpawnable } from '../os/worker-process.js';
import { originOf } from './runtime-dirs.js';

/** `workingDirUsable`: false when working_dir is missing (worker-check.ts warns of it). */
export function notifyCommandProblems(loaded: LoadedConfig, env: Record<string, string | undefined>, workingDirUsable: boolean): ConfigProblem[] {
  const argv = loaded.config.notify.command;
  if (argv === null) return [];
  const command = argv[0] ?? '';
  // A relative path with a slash resolves against working_dir: unknowable while it is missing.
  if (!workingDirUsable && command.includes('/') && !command.startsWith('/')) return [];
  // The command gets the daemon's environment, not worker.env.
  const problem = checkSpawnable({ argv, cwd: workingDirUsable ? loaded.config.working_dir : '/', env: { PATH: env.PATH ?? '' } });
  if (problem === null) return [];
  return [{
    ...originOf(loaded, 'notify.command'), key: 'notify.command', expected: 'a program that exists and is executable',
    reason: problem,
    hint: command.includes('/') ? 'fix the path' : 'install it or give its absolute path',
  }];
}
