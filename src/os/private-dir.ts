// The directories that hold the daemon's socket, PID file and logs, checked as OpenSSH's
// StrictModes checks ~/.ssh: whoever can rename or replace one of them, or any directory above
// it, can point the daemon (and the CLI) at files of their choosing (issue #14, item 6). So the
// directory itself must be ours, real (not a symbolic link) and writable only by us; every
// directory above it must be owned by root or us and, when others may write it, sticky (like
// /tmp: there nobody else can rename the entries we own); a symbolic link on the way must be owned
// by root or us, and the directories it leads through are checked the same way.
//
// Once the whole chain passes, no other user can change it, so what is checked stays true while
// we use it (a check-then-use is sound only under that condition). POSIX ACLs are not examined.
import { accessSync, chmodSync, constants, lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

const DIR_MODE = 0o700;
/** Linux's MAXSYMLINKS: a path resolution that follows more links fails with ELOOP. */
const MAX_SYMLINKS = 40;
/** The sticky bit: in such a directory only an entry's owner (or the directory's) may rename it. */
const S_ISVTX = 0o1000;

export type PrivateDirProblemKind =
  | 'symlink'
  | 'not_directory'
  | 'foreign_owner'
  | 'writable'
  | 'unsafe_parent'
  | 'too_many_links'
  | 'inaccessible';

export interface PrivateDirProblem {
  kind: PrivateDirProblemKind;
  /** The directory asked for. */
  dir: string;
  /** The path at fault: `dir` itself, or a directory or symbolic link on the way to it. */
  path: string;
  /** One sentence naming both: "/x/run is a symbolic link to /y". */
  text: string;
}

/** A directory refused by ensurePrivateDir; `problem` says which path and why. */
export class PrivateDirError extends Error {
  readonly code = 'unsafe_dir';
  readonly problem: PrivateDirProblem;
  constructor(problem: PrivateDirProblem, uid: number) {
    super(`unsafe directory: ${problem.text}; expected ${privateDirRequirement(uid)}`);
    this.name = 'PrivateDirError';
    this.problem = problem;
  }
}

/** What a private directory is, in the words the errors and `config check` use. */
export function privateDirRequirement(uid: number): string {
  return `a directory owned by uid ${uid}, not a symbolic link, not writable by group or others, ` +
    `under directories that only root or uid ${uid} can change`;
}

export function currentUid(): number {
  // process.getuid exists on every POSIX platform; this daemon is Linux only.
  return (process.getuid as () => number)();
}

/**
 * Makes `dir` a private directory: missing components are created one by one with mode 0700
 * (whatever the umask), an existing `dir` keeps its mode. Throws PrivateDirError when the
 * directory or the way to it is unsafe, and the errno error when a mkdir or lstat fails.
 */
export function ensurePrivateDir(dir: string, uid = currentUid()): void {
  const problem = walk(dir, uid, true);
  if (problem !== null) throw new PrivateDirError(problem, uid);
}

/**
 * What ensurePrivateDir would refuse, without creating anything: null when `dir` is private, or
 * missing with a safe way to it. A failing lstat (EACCES) is reported as an `inaccessible` problem.
 */
export function checkPrivateDir(dir: string, uid = currentUid()): PrivateDirProblem | null {
  try {
    return walk(dir, uid, false);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const target = resolve(dir);
    return { kind: 'inaccessible', dir: target, path: e.path ?? target, text: `${target} cannot be examined: ${e.message}` };
  }
}

/**
 * Walks `dir` from `/` one component at a time, as the kernel resolves it, and returns the first
 * problem. With `create`, a missing component is made 0700 and then checked like an existing one
 * (someone may have made it first); without, a missing component ends the walk: we would make it.
 */
function walk(dir: string, uid: number, create: boolean): PrivateDirProblem | null {
  const target = resolve(dir);
  const problem = (kind: PrivateDirProblemKind, path: string, text: string): PrivateDirProblem => ({ kind, dir: target, path, text });
  const pending = components(target);
  let current = '/';
  let links = 0;
  const root = lstatSync('/');
  if (pending.length === 0) {
    if (root.uid !== uid) return problem('foreign_owner', '/', `/ is owned by another user (${describeStats(root)})`);
    return (root.mode & 0o022) === 0 ? null : problem('writable', '/', `/ is writable by group or others (${describeStats(root)})`);
  }
  const rootProblem = parentProblem(root, uid);
  if (rootProblem !== null) return problem('unsafe_parent', '/', `${target} is under /, ${rootProblem}`);
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      current = dirname(current); // already checked on the way down
      continue;
    }
    const path = join(current, name);
    const isLeaf = pending.length === 0;
    let st = lstatOrNull(path);
    if (st === null) {
      if (!create) return missingProblem(target, path, current);
      makeDir(path);
      st = lstatSync(path);
    }
    if (st.isSymbolicLink()) {
      const to = readlinkSync(path);
      if (isLeaf) return problem('symlink', path, `${target} is a symbolic link to ${to}`);
      if (st.uid !== 0 && st.uid !== uid) {
        return problem('unsafe_parent', path, `${target} is under ${path}, a symbolic link to ${to} owned by uid ${st.uid}`);
      }
      links += 1;
      if (links > MAX_SYMLINKS) return problem('too_many_links', path, `${target} leads through more than ${MAX_SYMLINKS} symbolic links`);
      if (isAbsolute(to)) current = '/';
      pending.unshift(...components(to));
      continue;
    }
    if (!st.isDirectory()) {
      const text = isLeaf ? `${target} is not a directory (${describeStats(st)})` : `${target} is under ${path}, which is not a directory (${describeStats(st)})`;
      return problem('not_directory', path, text);
    }
    if (isLeaf) {
      if (st.uid !== uid) return problem('foreign_owner', path, `${target} is owned by another user (${describeStats(st)})`);
      if ((st.mode & 0o022) !== 0) return problem('writable', path, `${target} is writable by group or others (${describeStats(st)})`);
    } else {
      const why = parentProblem(st, uid);
      if (why !== null) return problem('unsafe_parent', path, `${target} is under ${path}, ${why}`);
    }
    current = path;
  }
  return null;
}

/** Why other users could rename or replace entries of this parent directory, or null. */
function parentProblem(st: Stats, uid: number): string | null {
  if (st.uid !== 0 && st.uid !== uid) return `which another user owns (${describeStats(st)})`;
  const sticky = (st.mode & S_ISVTX) !== 0;
  if ((st.mode & 0o022) !== 0 && !sticky) return `which others can write without the sticky bit (${describeStats(st)})`;
  return null;
}

/** A missing component in check mode: fine when we could create it, a problem when we could not. */
function missingProblem(target: string, path: string, parent: string): PrivateDirProblem | null {
  try {
    accessSync(parent, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { kind: 'inaccessible', dir: target, path: parent, text: `${target} does not exist and cannot be created in ${parent} (${code})` };
  }
}

function makeDir(path: string): void {
  try {
    mkdirSync(path, { mode: DIR_MODE });
  } catch (err) {
    // Someone made it since our lstat: it is checked as found, like any existing directory.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  // mkdir's mode is filtered by the umask; a umask like 0o277 would leave us unable to use it.
  // Safe to follow: the parent passed the check, so nobody else can have replaced the entry.
  chmodSync(path, DIR_MODE);
}

function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '');
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** "directory owned by uid 1001 with mode 0755": what is at a path, as the errors name it. */
export function describeStats(st: Stats): string {
  return `${fileType(st)} owned by uid ${st.uid} with mode 0${(st.mode & 0o7777).toString(8)}`;
}

function fileType(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular file';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'file of unknown type';
}
