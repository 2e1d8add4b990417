// The directories the configuration names for the daemon's files (the socket's, the PID file's and
// logs.dir), checked before anything starts: an unsafe one is a configuration error (exit 78) that
// names the key, the path and what is expected, like every other problem of the file. `config
// check` reports the same problems without creating anything. Rules: src/os/private-dir.ts and
// docs/supervision.md ("Files and trust").
import { dirname } from 'node:path';
import { ConfigError, type ConfigProblem, type ProblemOrigin } from '../config/errors.js';
import type { Config, LoadedConfig } from '../config/types.js';
import { daemonLogPath, daemonStderrPath } from '../daemon/log-path.js';
import { checkPrivateDir, currentUid, ensurePrivateDir, PrivateDirError, privateDirRequirement, type PrivateDirProblem } from '../os/private-dir.js';
import { checkPrivateFile, privateFileRequirement } from '../os/private-file.js';

export type RuntimeDirKey = 'socket_path' | 'pid_file' | 'logs.dir';

/** Per key: 'create' makes a missing directory (0700), 'check' only looks. A key left out is skipped. */
export type RuntimeDirPlan = Partial<Record<RuntimeDirKey, 'create' | 'check'>>;

const KEYS: readonly RuntimeDirKey[] = ['socket_path', 'pid_file', 'logs.dir'];

/** The directory a key puts the daemon's files in. */
export function runtimeDirOf(config: Config, key: RuntimeDirKey): string {
  switch (key) {
    case 'socket_path': return dirname(config.socket_path);
    case 'pid_file': return dirname(config.pid_file);
    case 'logs.dir': return config.logs.dir;
  }
}

/** Every problem of the planned directories (and of the log files already in logs.dir). */
export function runtimeDirProblems(loaded: LoadedConfig, plan: RuntimeDirPlan, uid = currentUid()): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const key of KEYS) {
    const action = plan[key];
    if (action === undefined) continue;
    const dir = runtimeDirOf(loaded.config, key);
    const found = action === 'create' ? ensureOrProblem(dir, uid) : checkPrivateDir(dir, uid);
    if (found !== null) {
      problems.push(dirProblem(loaded, key, found, uid));
      continue;
    }
    // The daemon appends to these two; one that is not ours would receive root's log (item 6).
    if (key === 'logs.dir') {
      for (const file of [daemonLogPath(loaded.config), daemonStderrPath(loaded.config)]) {
        const text = fileCheck(file, uid);
        if (text !== null) problems.push(fileProblem(loaded, key, text, uid));
      }
    }
  }
  return problems;
}

/** Throws a ConfigError (exit 78) listing every problem of the planned directories. */
export function assertRuntimeDirs(loaded: LoadedConfig, plan: RuntimeDirPlan): void {
  const problems = runtimeDirProblems(loaded, plan);
  if (problems.length > 0) throw new ConfigError(problems);
}

/** A file in logs.dir that the daemon refused to open: the same kind of problem, for logs.dir. */
export function logFileConfigError(loaded: LoadedConfig, text: string): ConfigError {
  return new ConfigError([fileProblem(loaded, 'logs.dir', text, currentUid())]);
}

function ensureOrProblem(dir: string, uid: number): PrivateDirProblem | null {
  try {
    ensurePrivateDir(dir, uid);
    return null;
  } catch (err) {
    if (err instanceof PrivateDirError) return err.problem;
    const e = err as NodeJS.ErrnoException;
    // mkdir failed (EACCES, EROFS, ENOSPC ...): the path cannot be used as configured either.
    return { kind: 'inaccessible', dir, path: e.path ?? dir, text: `${dir} cannot be created: ${e.message}` };
  }
}

function fileCheck(path: string, uid: number): string | null {
  try {
    return checkPrivateFile(path, uid);
  } catch (err) {
    return `${path} cannot be examined: ${(err as Error).message}`;
  }
}

function dirProblem(loaded: LoadedConfig, key: RuntimeDirKey, problem: PrivateDirProblem, uid: number): ConfigProblem {
  const requirement = privateDirRequirement(uid);
  const which = { socket_path: 'socket', pid_file: 'PID file', 'logs.dir': 'log' }[key];
  const reason = problem.kind === 'inaccessible'
    ? `unusable ${which} directory: ${problem.text}`
    : `unsafe ${which} directory: ${problem.text}; expected ${requirement}`;
  return { ...originOf(loaded, key), key, expected: requirement, got: problem.text, reason };
}

function fileProblem(loaded: LoadedConfig, key: RuntimeDirKey, text: string, uid: number): ConfigProblem {
  const requirement = privateFileRequirement(uid);
  const reason = `unsafe file in it: ${text}; expected ${requirement}, or none (the daemon creates it 0600)`;
  return { ...originOf(loaded, key), key, expected: requirement, got: text, reason, hint: 'remove it' };
}

/** Where the key's value came from, so the problem points at the line (or variable) to fix. */
export function originOf(loaded: LoadedConfig, key: string): ProblemOrigin {
  const source = loaded.sources[key];
  switch (source?.kind) {
    case 'file': return source.line === undefined ? { source: 'file', file: source.path } : { source: 'file', file: source.path, line: source.line };
    case 'env': return { source: 'env', envName: source.name };
    case 'flag': return { source: 'flag', flag: source.name };
    default: return { source: 'default' };
  }
}
