// Rules that involve more than one key, or a value only known once resolved. Checked on the merged
// values, and only for keys whose own values were all valid.
import type { ConfigProblem } from './errors.js';
import { type EffectiveValue, sourceLabel, sourceRank } from './layer.js';
import { basename, dirname, join } from 'node:path';
import { longestBoundSocketPath, MAX_SOCKET_PATH_BYTES, SOCKET_TEMP_NAME_BYTES } from './paths.js';

export function checkRules(values: ReadonlyMap<string, EffectiveValue>, invalidKeys: ReadonlySet<string>, problems: ConfigProblem[]): void {
  const usable = (...keys: string[]): boolean => keys.every((key) => !invalidKeys.has(key) && values.has(key));
  const number = (key: string): number => values.get(key)?.value as number;

  if (usable('memory.critical_threshold_bytes', 'memory.min_available_bytes')) {
    if (number('memory.critical_threshold_bytes') >= number('memory.min_available_bytes')) {
      problems.push(pairProblem(values, 'memory.critical_threshold_bytes', 'less than', 'memory.min_available_bytes', 'greater than'));
    }
  }
  if (usable('restart.initial_backoff_ms', 'restart.max_backoff_ms')) {
    if (number('restart.initial_backoff_ms') > number('restart.max_backoff_ms')) {
      problems.push(pairProblem(values, 'restart.initial_backoff_ms', 'at most', 'restart.max_backoff_ms', 'at least'));
    }
  }
  if (usable('restart.hold_ms', 'restart.hold_max_ms')) {
    if (number('restart.hold_ms') > number('restart.hold_max_ms')) {
      problems.push(pairProblem(values, 'restart.hold_ms', 'at most', 'restart.hold_max_ms', 'at least'));
    }
  }
  if (usable('restart.prevent_exit_codes', 'restart.hold_exit_codes')) checkExitCodeLists(values, problems);
  checkHeartbeatPair(values, invalidKeys, problems);
  if (usable('cgroup.backstop_factor', 'memory.worker_max_bytes')) checkBackstop(values, problems);
  const socket = values.get('socket_path');
  if (socket !== undefined && usable('socket_path')) {
    const socketPath = socket.value as string;
    const bytes = Buffer.byteLength(socketPath);
    const dirLimit = MAX_SOCKET_PATH_BYTES - SOCKET_TEMP_NAME_BYTES;
    if (longestBoundSocketPath(socketPath) > MAX_SOCKET_PATH_BYTES) {
      const dirBytes = Buffer.byteLength(dirname(socketPath));
      problems.push({
        ...socket.origin,
        key: 'socket_path',
        expected: `a path of at most ${MAX_SOCKET_PATH_BYTES} bytes once resolved, in a directory of at most ${dirLimit} bytes (the Unix socket limit; the socket is bound as <dir>/.xxxxxxxx first)`,
        got: bytes > MAX_SOCKET_PATH_BYTES ? `${JSON.stringify(socketPath)} (${bytes} bytes)` : `${JSON.stringify(socketPath)} (its directory is ${dirBytes} bytes)`,
        hint: 'set a shorter socket_path, e.g. under $XDG_RUNTIME_DIR',
      });
    }
  }
  if (usable('socket_path', 'pid_file', 'logs.dir', 'logs.max_files')) checkFileClashes(values, problems);
}

/** An exit code cannot both stop the worker for good and hold it: the worker's request would be ambiguous. */
function checkExitCodeLists(values: ReadonlyMap<string, EffectiveValue>, problems: ConfigProblem[]): void {
  const prevent = values.get('restart.prevent_exit_codes') as EffectiveValue;
  const hold = values.get('restart.hold_exit_codes') as EffectiveValue;
  const both = (hold.value as number[]).filter((code) => (prevent.value as number[]).includes(code));
  if (both.length === 0) return;
  // At whichever list the higher-precedence source set, as pairProblem does; the hold list on a tie.
  const blamePrevent = sourceRank(prevent.source) > sourceRank(hold.source);
  const [key, blamed, otherKey, other] = blamePrevent
    ? ['restart.prevent_exit_codes', prevent, 'restart.hold_exit_codes', hold]
    : ['restart.hold_exit_codes', hold, 'restart.prevent_exit_codes', prevent];
  problems.push({
    ...blamed.origin,
    key,
    expected: `no code that is also in ${otherKey} (from ${sourceLabel(other.source)})`,
    got: `[${(blamed.value as number[]).join(', ')}] (${both.join(', ')} in both lists)`,
    hint: 'keep each exit code in one list: prevent stops the worker, hold starts it again later',
  });
}

/** heartbeat_file and heartbeat_timeout_ms mean nothing alone: the one set without the other is named. */
function checkHeartbeatPair(values: ReadonlyMap<string, EffectiveValue>, invalidKeys: ReadonlySet<string>, problems: ConfigProblem[]): void {
  const file = 'health.heartbeat_file';
  const timeout = 'health.heartbeat_timeout_ms';
  if (invalidKeys.has(file) || invalidKeys.has(timeout)) return;
  const fileValue = values.get(file);
  const timeoutValue = values.get(timeout);
  if (fileValue === undefined || timeoutValue === undefined) return;
  const fileSet = fileValue.value !== null;
  const timeoutSet = timeoutValue.value !== null;
  if (fileSet === timeoutSet) return;
  const [key, given, missing] = fileSet ? [file, fileValue, timeout] : [timeout, timeoutValue, file];
  problems.push({
    ...given.origin,
    key,
    expected: `to be set together with ${missing}`,
    got: JSON.stringify(given.value),
    hint: `set ${missing} too, or remove ${key}`,
  });
}

/** The kernel backstop is a multiple of memory.worker_max_bytes: alone it means nothing. */
function checkBackstop(values: ReadonlyMap<string, EffectiveValue>, problems: ConfigProblem[]): void {
  const factor = values.get('cgroup.backstop_factor') as EffectiveValue;
  if (factor.value === null || values.get('memory.worker_max_bytes')?.value !== null) return;
  problems.push({
    ...factor.origin,
    key: 'cgroup.backstop_factor',
    expected: 'to be set together with memory.worker_max_bytes (memory.max is that times the factor)',
    got: String(factor.value),
    hint: 'set memory.worker_max_bytes too, or remove cgroup.backstop_factor',
  });
}

/**
 * The files each key makes the daemon use, as the daemon names them (a test checks these against
 * src/os/instance-lock.ts, src/os/pid-file.ts and src/daemon/log-path.ts): `files` are created as
 * files, `dirs` must be directories, and `owns` tells whether a path is one of the key's files.
 */
interface FileClaim {
  key: 'socket_path' | 'pid_file' | 'logs.dir';
  files: string[];
  dirs: string[];
  owns(path: string): boolean;
}

function claimsOf(values: ReadonlyMap<string, EffectiveValue>): FileClaim[] {
  const socketPath = values.get('socket_path')?.value as string;
  const pidFile = values.get('pid_file')?.value as string;
  const logDir = values.get('logs.dir')?.value as string;
  const maxFiles = values.get('logs.max_files')?.value as number;
  const exact = (key: FileClaim['key'], files: string[]): FileClaim => ({ key, files, dirs: [...new Set(files.map((f) => dirname(f)))], owns: (p) => files.includes(p) });
  const logFile = join(logDir, 'autopilotd.log');
  return [
    // pid_file first: where both come from the same source, the problem is reported at it.
    exact('pid_file', [pidFile, `${pidFile}.lock`, `${pidFile}.instance`]),
    exact('socket_path', [socketPath, `${socketPath}.lock`]),
    {
      key: 'logs.dir',
      files: [logFile, join(logDir, 'autopilotd.stderr.log')],
      dirs: [logDir],
      // Rotated files: autopilotd.log.1 ... autopilotd.log.<max_files - 1> (src/os/log-file.ts).
      owns: (p) => {
        if (dirname(p) !== logDir) return false;
        const name = basename(p);
        if (name === 'autopilotd.log' || name === 'autopilotd.stderr.log') return true;
        const rotated = /^autopilotd\.log\.([1-9][0-9]*)$/.exec(name);
        return rotated !== null && Number(rotated[1]) < maxFiles;
      },
    },
  ];
}

/**
 * Two keys whose files meet: one file used for two purposes (pid_file equal to socket_path, or to
 * socket_path's lock file), or one key's file where another needs a directory (logs.dir under
 * pid_file). The daemon would fail at run time, after it had written some of them (issue #15).
 */
function checkFileClashes(values: ReadonlyMap<string, EffectiveValue>, problems: ConfigProblem[]): void {
  const claims = claimsOf(values);
  for (let i = 0; i < claims.length; i += 1) {
    for (let j = i + 1; j < claims.length; j += 1) {
      const [a, b] = [claims[i] as FileClaim, claims[j] as FileClaim];
      const clash = clashBetween(a, b) ?? clashBetween(b, a);
      if (clash !== null) problems.push(clashProblem(values, a.key, b.key, clash));
    }
  }
}

/** How `b` runs into `a`'s files, in words, or null. */
function clashBetween(a: FileClaim, b: FileClaim): string | null {
  const shared = b.files.find((file) => a.owns(file));
  if (shared !== undefined) return `both would use ${shared}`;
  for (const dir of b.dirs) {
    for (let up = dir; ; up = dirname(up)) {
      if (a.owns(up)) return `${b.key} needs ${dir} to be a directory, and ${up} is ${a.key}'s file`;
      if (dirname(up) === up) break;
    }
  }
  return null;
}

/** Reported at whichever key the higher-precedence source set, as pairProblem does. */
function clashProblem(values: ReadonlyMap<string, EffectiveValue>, left: string, right: string, clash: string): ConfigProblem {
  const leftValue = values.get(left) as EffectiveValue;
  const rightValue = values.get(right) as EffectiveValue;
  const blameRight = sourceRank(rightValue.source) > sourceRank(leftValue.source);
  const [key, blamed, otherKey, other] = blameRight ? [right, rightValue, left, leftValue] : [left, leftValue, right, rightValue];
  return {
    ...blamed.origin,
    key,
    expected: `a path whose files stay apart from ${otherKey}'s`,
    got: JSON.stringify(blamed.value),
    reason: `${JSON.stringify(blamed.value)} clashes with ${otherKey} (${JSON.stringify(other.value)}, from ${sourceLabel(other.source)}): ${clash}`,
    hint: `give ${key} a path of its own`,
  };
}

/**
 * `left` must be `relation` `right`. The problem is reported at whichever of the two was set by
 * the higher-precedence source, since that is the setting that broke the pair.
 */
function pairProblem(
  values: ReadonlyMap<string, EffectiveValue>,
  left: string,
  relation: string,
  right: string,
  inverse: string,
): ConfigProblem {
  const leftValue = values.get(left) as EffectiveValue;
  const rightValue = values.get(right) as EffectiveValue;
  const blameRight = sourceRank(rightValue.source) > sourceRank(leftValue.source);
  const [key, blamed, otherKey, other, words] = blameRight
    ? [right, rightValue, left, leftValue, inverse]
    : [left, leftValue, right, rightValue, relation];
  return {
    ...blamed.origin,
    key,
    expected: `${words} ${otherKey} (${String(other.value)}, from ${sourceLabel(other.source)})`,
    got: String(blamed.value),
  };
}
