// Files the daemon writes or trusts inside its private directories (private-dir.ts): opened with
// O_NOFOLLOW, so a symbolic link is never followed (no truncation of, no append to, no read from
// its target), then checked on the open fd, so what is checked is what is used: a regular file
// owned by us with one name. Ours are kept 0600 (issue #14, items 6 and 7).
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, type BigIntStats, type Stats } from 'node:fs';
import { currentUid } from './private-dir.js';

export const PRIVATE_FILE_MODE = 0o600;

/** A file refused by openPrivateFile; the message names the path and what was found there. */
export class UnsafeFileError extends Error {
  readonly code = 'unsafe_file';
  readonly path: string;
  /** "/x/autopilotd.log is owned by uid 1001 (regular file, mode 0666)". */
  readonly text: string;
  constructor(path: string, text: string, uid: number) {
    super(`unsafe file: ${text}; expected ${privateFileRequirement(uid)}`);
    this.name = 'UnsafeFileError';
    this.path = path;
    this.text = text;
  }
}

export function privateFileRequirement(uid: number): string {
  return `a regular file owned by uid ${uid} with one link, not a symbolic link`;
}

/**
 * open(2) with O_NOFOLLOW (and O_NONBLOCK, so a FIFO cannot hang us), then fstat: anything but a
 * regular file of ours with one link is closed again and refused with UnsafeFileError. A file of
 * ours with another mode is set to 0600, so a new file is 0600 whatever the umask.
 */
export function openPrivateFile(path: string, flags: number, uid = currentUid()): { fd: number; stats: BigIntStats } {
  let fd: number;
  try {
    fd = openSync(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeFileError(path, `${path} is a symbolic link to ${readlinkOr(path)}`, uid);
    throw err;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    // Opening a directory for writing fails with EISDIR; for reading it succeeds. Same error both ways.
    if (stats.isDirectory()) throw errnoError('EISDIR', 'open', path, 'illegal operation on a directory');
    const why = fileProblem(stats, path, uid);
    if (why !== null) throw new UnsafeFileError(path, why, uid);
    if ((Number(stats.mode) & 0o7777) !== PRIVATE_FILE_MODE) fchmodSync(fd, PRIVATE_FILE_MODE);
    return { fd, stats };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * The content of a file of ours, `{ refused }` saying why a file that is there is not trusted
 * (a symbolic link, another user's, not a regular file), or null when there is none.
 */
export function readPrivateFile(path: string, uid = currentUid()): { text: string } | { refused: string } | null {
  let opened;
  try {
    opened = openPrivateFile(path, constants.O_RDONLY, uid);
  } catch (err) {
    if (err instanceof UnsafeFileError) return { refused: err.text };
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return { text: readFileSync(opened.fd, 'utf8') };
  } finally {
    closeSync(opened.fd);
  }
}

/**
 * What openPrivateFile would refuse at `path`, by lstat and without opening: a sentence, or null
 * when the file is fine or missing. For reporting ahead of time (`config check`, `start`).
 */
export function checkPrivateFile(path: string, uid = currentUid()): string | null {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (st.isSymbolicLink()) return `${path} is a symbolic link to ${readlinkOr(path)}`;
  return fileProblem(st, path, uid);
}

function fileProblem(st: Stats | BigIntStats, path: string, uid: number): string | null {
  const found = `regular file, mode 0${(Number(st.mode) & 0o7777).toString(8)}`;
  if (!st.isFile()) return `${path} is not a regular file (${typeOf(st)}, owned by uid ${st.uid})`;
  if (Number(st.uid) !== uid) return `${path} is owned by uid ${st.uid} (${found})`;
  // A second name could be a hard link to a file elsewhere that we must not write.
  if (Number(st.nlink) !== 1) return `${path} has ${st.nlink} hard links (${found})`;
  return null;
}

function typeOf(st: Stats | BigIntStats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'a file of unknown type';
}

function errnoError(code: string, syscall: string, path: string, text: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${text}, ${syscall} '${path}'`);
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  return err;
}

function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '(unreadable)'; // Only used in a message about a link we refuse anyway.
  }
}
