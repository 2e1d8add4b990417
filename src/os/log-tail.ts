// Reading the rotated logs written by RotatingLogFile (log-file.ts), for `autopilotd logs -n N`.
// Files run oldest to newest: path.<maxFiles-1> ... path.1, path. Lines are returned without '\n'.
// The helpers below are shared with log-follow.ts (`logs -f`).
import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';

export const CHUNK_BYTES = 64 * 1024;
export const NEWLINE = 0x0a;

/**
 * The last `n` lines across path.<maxFiles-1> ... path.1, path, oldest first. A snapshot read by
 * path: a rotation in the middle of it can repeat or skip the lines of one file boundary.
 */
export function readLastLines(path: string, n: number, maxFiles: number): string[] {
  return lastLinesAcrossFiles(path, n, maxFiles, null);
}

export interface OpenFile {
  path: string;
  fd: number;
  dev: bigint;
  ino: bigint;
  /** Next byte to read. */
  offset: number;
}

/**
 * Last `n` lines, newest file first until enough. When `current` is given it stands for `path`,
 * read up to its offset; otherwise an unterminated last line of `path` is left out (still being
 * written). An unterminated last line of a rotated file counts: nothing will finish it.
 */
export function lastLinesAcrossFiles(path: string, n: number, maxFiles: number, current: OpenFile | null): string[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`readLastLines(${path}): n must be an integer >= 0, got ${n}`);
  const newestFirst: string[][] = [];
  let needed = n;
  for (let index = 0; index < maxFiles && needed > 0; index += 1) {
    if (index === 0 && current !== null) {
      const lines = lastLinesOfFile(current, current.offset, needed, false);
      newestFirst.push(lines);
      needed -= lines.length;
      continue;
    }
    const file = openIfExists(index === 0 ? path : `${path}.${index}`);
    if (file === null) continue; // A gap in the rotation (missing file) is a result, not an error.
    try {
      const size = Number(fstatSync(file.fd, { bigint: true }).size);
      const lines = lastLinesOfFile(file, size, needed, index > 0);
      newestFirst.push(lines);
      needed -= lines.length;
    } finally {
      closeSync(file.fd);
    }
  }
  return newestFirst.reverse().flat();
}

/** Reads backwards from `end` in chunks until `n` lines are found or the file starts. */
function lastLinesOfFile(file: OpenFile, end: number, n: number, keepUnterminated: boolean, start = 0): string[] {
  if (n === 0 || end <= start) return [];
  const chunks: Buffer[] = [];
  let position = end;
  let newlines = 0;
  // n terminators plus the newline before the first wanted line.
  while (position > start && newlines <= n) {
    const length = Math.min(CHUNK_BYTES, position - start);
    position -= length;
    const chunk = readExactly(file, position, length);
    chunks.unshift(chunk);
    for (const byte of chunk) if (byte === NEWLINE) newlines += 1;
  }
  let data = Buffer.concat(chunks);
  if (data[data.length - 1] !== NEWLINE) {
    data = keepUnterminated ? Buffer.concat([data, Buffer.from('\n')]) : data.subarray(0, data.lastIndexOf(NEWLINE) + 1);
  }
  // Unless we reached the start (of the file, or the mark), the first piece is the tail of an earlier line.
  if (position > start) data = data.subarray(data.indexOf(NEWLINE) + 1);
  const lines: string[] = [];
  splitLines(data, lines);
  return lines.slice(-n);
}

/** Offset just after the last '\n' before `end` (0 if none). */
export function lastNewlineEnd(file: OpenFile, end: number): number {
  let position = end;
  while (position > 0) {
    const length = Math.min(CHUNK_BYTES, position);
    position -= length;
    const index = readExactly(file, position, length).lastIndexOf(NEWLINE);
    if (index !== -1) return position + index + 1;
  }
  return 0;
}

/** Appends the '\n'-terminated lines of `data` (which ends with '\n' or is empty). */
export function splitLines(data: Buffer, lines: string[]): void {
  let start = 0;
  for (let index = data.indexOf(NEWLINE); index !== -1; index = data.indexOf(NEWLINE, start)) {
    lines.push(data.toString('utf8', start, index));
    start = index + 1;
  }
}

function readExactly(file: OpenFile, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = readAt(file, buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) return buffer.subarray(0, filled); // Truncated under us.
    filled += bytesRead;
  }
  return buffer;
}

/** readSync, with the path in the error (Node's read errors, e.g. EIO or EISDIR, name none). */
export function readAt(file: OpenFile, buffer: Buffer, offset: number, length: number, position: number): number {
  try {
    return readSync(file.fd, buffer, offset, length, position);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const wrapped: NodeJS.ErrnoException = new Error(`cannot read ${file.path}: ${e.code ?? e.message}`, { cause: err });
    if (e.code !== undefined) wrapped.code = e.code;
    wrapped.syscall = 'read';
    wrapped.path = file.path;
    throw wrapped;
  }
}

export function openIfExists(path: string): OpenFile | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err; // Node's message names the syscall, errno and path.
  }
  try {
    const stats: BigIntStats = fstatSync(fd, { bigint: true });
    return { path, fd, dev: stats.dev, ino: stats.ino, offset: 0 };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

export function sameFile(a: { dev: bigint; ino: bigint }, b: { dev: bigint; ino: bigint }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Where a log file ended at some moment: its identity and size (null: there was no file). */
export type LogMark = { dev: bigint; ino: bigint; size: number } | null;

/** The end of the file at `path` now, to read only what is written after it (readLinesSince). */
export function markLogEnd(path: string): LogMark {
  const file = openIfExists(path);
  if (file === null) return null;
  try {
    return { dev: file.dev, ino: file.ino, size: Number(fstatSync(file.fd, { bigint: true }).size) };
  } finally {
    closeSync(file.fd);
  }
}

/**
 * The last `n` lines written to path (and, once rotated, path.1 ...) since `mark`: newest file
 * first, back to the file that was at `path` when the mark was taken, read from the mark on. When
 * that file is gone (rotated out) or there was none, every file kept is newer than the mark.
 */
export function readLinesSince(path: string, mark: LogMark, n: number, maxFiles: number): string[] {
  const newestFirst: string[][] = [];
  let needed = n;
  for (let index = 0; index < maxFiles && needed > 0; index += 1) {
    const file = openIfExists(index === 0 ? path : `${path}.${index}`);
    if (file === null) continue;
    try {
      const marked = mark !== null && sameFile(file, mark);
      const size = Number(fstatSync(file.fd, { bigint: true }).size);
      const from = marked ? Math.min(mark.size, size) : 0;
      // A file written past the mark: its lines, as if it started at the mark (the mark falls on a
      // line boundary: the daemon writes whole lines, and nothing else was writing).
      const lines = lastLinesOfFile(file, size, needed, index > 0, from);
      newestFirst.push(lines);
      needed -= lines.length;
      if (marked) break;
    } finally {
      closeSync(file.fd);
    }
  }
  return newestFirst.reverse().flat();
}
