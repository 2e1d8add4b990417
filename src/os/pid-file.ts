// The PID file (`<pid>\n`) and, beside it, the instance record used for crash recovery: after a
// daemon dies hard, the next one reads the record to find and stop the orphaned worker tree.
// Both are replaced atomically (temp file in the same directory, fsync, rename, fsync directory),
// so a reader sees the old content or the new one, never an empty or half-written file.
// Removal is compare-then-unlink; that is safe only because the instance lock
// (instance-lock.ts) keeps a second daemon from writing these files concurrently.
//
// Both live in a private directory (private-dir.ts; the daemon makes sure of it first) and are
// 0600: the record names an instance id, and whoever could read or plant one could have a daemon
// stop another's tree (issue #14, item 7). They are read as private-file.ts reads: never through a
// symbolic link, and a file that is not ours or not a regular file counts as no file.
import { randomBytes } from './random-bytes.js';
import { closeSync, constants, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PRIVATE_FILE_MODE, readPrivateFile } from './private-file.js';

/** A new temp file, never an existing name or a link: O_EXCL fails on any entry, O_NOFOLLOW says so. */
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Linux PID_MAX_LIMIT (2^22): anything larger cannot be a PID. */
const PID_MAX = 4_194_304;

export interface InstanceRecord {
  pid: number;
  instance_id: string;
  /** ISO 8601 timestamp of the daemon start. */
  started_at: string;
  /**
   * Where the daemon listens and the config file it was started with, so a client can find it when
   * the file has changed or broken since. null when unknown (a record written before issue #14).
   */
  socket_path: string | null;
  config_path: string | null;
  /**
   * The daemon's start time in clock ticks since boot (/proc/<pid>/stat field 22): with `pid`, it
   * tells the daemon that wrote the record apart from a later process that got the same PID.
   * null in a record written before issue #14.
   */
  start_ticks: number | null;
}

export function writePidFile(path: string, pid: number): void {
  if (!isPid(pid)) throw new RangeError(`writePidFile(${path}): pid must be a positive integer, got ${pid}`);
  writeFileAtomic(path, `${pid}\n`);
}

/** The PID in the file, or null when it is missing or does not hold a PID (a stale leftover). */
export function readPidFile(path: string): number | null {
  const text = readIfExists(path);
  if (text === null) return null;
  const trimmed = text.trim();
  if (!/^[1-9][0-9]{0,6}$/.test(trimmed)) return null;
  const pid = Number(trimmed);
  return isPid(pid) ? pid : null;
}

/** Removes the PID file only if it still holds `pid`; returns whether it did. */
export function removePidFile(path: string, pid: number): boolean {
  if (readPidFile(path) !== pid) return false;
  return unlinkIfExists(path);
}

export function instanceRecordPath(pidFilePath: string): string {
  return `${pidFilePath}.instance`;
}

export function writeInstanceRecord(pidFilePath: string, record: InstanceRecord): void {
  if (!isInstanceRecord(record)) {
    throw new TypeError(`writeInstanceRecord(${instanceRecordPath(pidFilePath)}): malformed record ${JSON.stringify(record)}`);
  }
  writeFileAtomic(instanceRecordPath(pidFilePath), JSON.stringify(pickRecordFields(record)) + '\n');
}

/**
 * The record, or null when it is missing or malformed (treated as stale, like a garbage PID file),
 * or is not a regular file of ours: then `onIgnored` is told why, and nothing in it is trusted.
 */
export function readInstanceRecord(pidFilePath: string, onIgnored?: (reason: string) => void): InstanceRecord | null {
  const text = readIfExists(instanceRecordPath(pidFilePath), onIgnored);
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null; // A torn or foreign file is a result ("no usable record"), not a failure.
  }
  return isInstanceRecord(parsed) ? pickRecordFields(parsed) : null;
}

/** Removes the record only if it belongs to `instanceId`; returns whether it did. */
export function removeInstanceRecord(pidFilePath: string, instanceId: string): boolean {
  if (readInstanceRecord(pidFilePath)?.instance_id !== instanceId) return false;
  return unlinkIfExists(instanceRecordPath(pidFilePath));
}

function isPid(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= PID_MAX;
}

/** Exactly the record's fields, so neither extra keys in a file nor on an object travel on. */
function pickRecordFields({ pid, instance_id, started_at, socket_path, config_path, start_ticks }: InstanceRecord): InstanceRecord {
  // `?? null`: a record from before issue #14 has neither, and still names an orphan tree.
  return { pid, instance_id, started_at, socket_path: socket_path ?? null, config_path: config_path ?? null, start_ticks: start_ticks ?? null };
}

function isInstanceRecord(value: unknown): value is InstanceRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  if (!isPid(r.pid) || typeof r.instance_id !== 'string' || r.instance_id === '') return false;
  if (typeof r.started_at !== 'string' || Number.isNaN(Date.parse(r.started_at))) return false;
  const ticks = r.start_ticks;
  if (ticks !== null && ticks !== undefined && (typeof ticks !== 'number' || !Number.isSafeInteger(ticks) || ticks < 0)) return false;
  return isPathOrUnknown(r.socket_path) && isPathOrUnknown(r.config_path);
}

/** An absolute path, or null or absent for unknown. */
function isPathOrUnknown(value: unknown): boolean {
  return value === null || value === undefined || (typeof value === 'string' && value.startsWith('/'));
}

/** The content of our file at path; null when it is missing, or not ours (told to onIgnored). */
function readIfExists(path: string, onIgnored?: (reason: string) => void): string | null {
  let read;
  try {
    read = readPrivateFile(path);
  } catch (err) {
    throw withPath(err, 'read', path);
  }
  if (read === null) return null;
  if ('refused' in read) {
    onIgnored?.(read.refused);
    return null;
  }
  return read.text;
}

/** Node's message for a failed read(2) (EISDIR, EIO) names no path; this one does. */
function withPath(err: unknown, action: string, path: string): Error {
  const e = err as NodeJS.ErrnoException;
  const wrapped: NodeJS.ErrnoException = new Error(`cannot ${action} ${path}: ${e.code ?? e.message}`, { cause: err });
  if (e.code !== undefined) wrapped.code = e.code;
  if (e.syscall !== undefined) wrapped.syscall = e.syscall;
  wrapped.path = path;
  return wrapped;
}

function unlinkIfExists(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function writeFileAtomic(path: string, content: string): void {
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tempPath, TEMP_FLAGS, PRIVATE_FILE_MODE);
  try {
    try {
      fchmodSync(fd, PRIVATE_FILE_MODE); // openSync's mode is masked by the umask.
      const bytes = Buffer.from(content, 'utf8');
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tempPath, path);
  } catch (err) {
    discardTempFile(tempPath, err);
    throw err;
  }
  // The rename is durable only once the directory entry is on disk.
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function discardTempFile(tempPath: string, cause: unknown): void {
  try {
    unlinkSync(tempPath);
  } catch (unlinkErr) {
    if ((unlinkErr as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AggregateError([cause, unlinkErr], `atomic write failed and temp file ${tempPath} could not be removed`);
  }
}
