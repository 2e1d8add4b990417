// The worker's spawn, tried on paper before anything starts (issue #15, item 4), with the same
// checks the daemon makes at each spawn (checkSpawnable in src/os/worker-process.ts):
// - a command that does not resolve is a configuration error (exit 78): no retry can fix it short
//   of installing the program, and a daemon retrying it forever only hides the typo;
// - a missing working_dir is a warning: the daemon starts and retries, since the directory may yet
//   appear (a mount, a checkout still being cloned).
import type { ConfigProblem } from '../config/errors.js';
import type { LoadedConfig } from '../config/types.js';
import { checkSpawnable } from '../os/worker-process.js';
import { notifyCommandProblems } from './notify-check.js';
import { originOf } from './runtime-dirs.js';

export interface WorkerCheck {
  errors: ConfigProblem[];
  warnings: ConfigProblem[];
}

/**
 * `env` is the environment the daemon will have (the caller's: `start` passes its own on); the
 * worker gets it with worker.env on top, so its PATH is worker.env.PATH when that is set.
 */
export function workerProblems(loaded: LoadedConfig, env: Record<string, string | undefined>): WorkerCheck {
  const { config } = loaded;
  const path = config.worker.env.PATH ?? env.PATH ?? '';
  const check = { errors: [] as ConfigProblem[], warnings: [] as ConfigProblem[] };
  // A program that surely exists, so that only the directory can be at fault.
  const dirProblem = checkSpawnable({ argv: [process.execPath], cwd: config.working_dir, env: { PATH: path } });
  if (dirProblem !== null) {
    check.warnings.push({
      ...originOf(loaded, 'working_dir'), key: 'working_dir', expected: 'an existing directory',
      reason: `${dirProblem}; the daemon starts anyway and retries the worker with backoff until it is`,
    });
  }
  check.errors.push(...notifyCommandProblems(loaded, env, dirProblem === null));
  const command = config.worker.command[0] ?? '';
  // A relative path with a slash resolves against working_dir: unknowable while it is missing.
  if (dirProblem !== null && command.includes('/') && !command.startsWith('/')) return check;
  const commandProblem = checkSpawnable({ argv: config.worker.command, cwd: dirProblem === null ? config.working_dir : '/', env: { PATH: path } });
  if (commandProblem !== null) {
    check.errors.push({
      ...originOf(loaded, 'worker.command'), key: 'worker.command', expected: 'a program that exists and is executable',
      reason: commandProblem,
      hint: command.includes('/') ? 'fix the path' : 'install it, give its absolute path, or set worker.env.PATH',
    });
  }
  return check;
}
