// A size-rotated log file: path, path.1 (newest rotated) ... path.<maxFiles-1> (oldest), so disk
// use stays near maxFiles * maxFileBytes. Writes are synchronous (lines are small, and a log line
// must be on disk before a crash it may explain) and never throw: when the disk is full or the
// directory is unwritable, lines are dropped and counted, the first failure of a streak is reported
// once, and the first successful write afterwards starts with a "dropped N lines" notice.
//
// Each write is one write(2) on an O_APPEND fd, so concurrent writers interleave whole lines.
// Before each write the path is lstat'ed: if another writer rotated or someone removed the file
// (or its directory), we follow the path instead of appending to an inode nobody will read.
//
// The file is opened as private-file.ts opens files: never through a symbolic link, and only when
// it is a regular file of ours with one link; anything else is not written (issue #14, item 6):
// its lines are dropped and the problem reported, as for a full disk. A missing directory is
// made again as a private one (private-dir.ts).
import { closeSync, constants, lstatSync, readdirSync, renameSync, unlinkSync, writeSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ensurePrivateDir } from './private-dir.js';
import { openPrivateFile } from './private-file.js';

export interface RotatingLogFileOptions {
  path: string;
  maxFileBytes: number;
  /** Files kept in total: path plus maxFiles-1 rotated ones. */
  maxFiles: number;
  /** Called once at the first failure of a streak of dropped lines; must not throw. */
  onProblem?: (message: string) => void;
  /** The line (with its '\n') written when writing works again; lets JSON-line logs stay parseable. */
  droppedNotice?: (droppedLines: number, errno: string) => string;
}

const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;

export function defaultDroppedNotice(droppedLines: number, errno: string): string {
  return `autopilotd: dropped ${droppedLines} log lines (${errno})\n`;
}

export class RotatingLogFile {
  readonly path: string;
  readonly #maxFileBytes: number;
  readonly #maxFiles: number;
  readonly #onProblem: (message: string) => void;
  readonly #droppedNotice: (droppedLines: number, errno: string) => string;
  #fd: number | null = null;
  #fileId: { dev: bigint; ino: bigint } | null = null;
  #droppedLines = 0;
  /** Lines dropped since the last successful write, and the errno that started the streak. */
  #streakLines = 0;
  #streakErrno: string | null = null;
  /** A failed write left part of a line in the file; the next write must start on a new line. */
  #lineIsOpen = false;
  #closed = false;

  constructor(opts: RotatingLogFileOptions) {
    if (!Number.isInteger(opts.maxFileBytes) || opts.maxFileBytes < 2) {
      throw new RangeError(`RotatingLogFile(${opts.path}): maxFileBytes must be an integer >= 2, got ${opts.maxFileBytes}`);
    }
    if (!Number.isInteger(opts.maxFiles) || opts.maxFiles < 1) {
      throw new RangeError(`RotatingLogFile(${opts.path}): maxFiles must be an integer >= 1, got ${opts.maxFiles}`);
    }
    this.path = opts.path;
    this.#maxFileBytes = opts.maxFileBytes;
    this.#maxFiles = opts.maxFiles;
    this.#onProblem = opts.onProblem ?? (() => {});
    this.#droppedNotice = opts.droppedNotice ?? defaultDroppedNotice;
  }

  /** Lines dropped over this object's life because they could not be written. */
  get droppedLines(): number {
    return this.#droppedLines;
  }

  /** Appends one line (a missing trailing '\n' is added). Never throws. */
  write(line: string): void {
    if (this.#closed) {
      this.#drop('EBADF', `write to ${this.path} after close()`);
      return;
    }
    let text = line.endsWith('\n') ? line : line + '\n';
    if (this.#streakErrno !== null) text = this.#droppedNotice(this.#streakLines, this.#streakErrno) + text;
    if (this.#lineIsOpen) text = '\n' + text;
    const bytes = capLine(Buffer.from(text, 'utf8'), this.#maxFileBytes);
    let written = 0;
    try {
      const fd = this.#fdFor(bytes.length);
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    } catch (err) {
      if (written > 0) this.#lineIsOpen = true;
      const e = err as NodeJS.ErrnoException;
      let message = `cannot write log file ${this.path}: ${e.message}`;
      try {
        this.#closeFd(); // Reopen on the next write: the directory may come back, the disk may free up.
      } catch (closeErr) {
        message += `; closing it failed too: ${(closeErr as Error).message}`;
      }
      this.#drop(e.code ?? 'EIO', message);
      return;
    }
    this.#lineIsOpen = false;
    this.#streakLines = 0;
    this.#streakErrno = null;
  }

  close(): void {
    this.#closed = true;
    try {
      this.#closeFd();
    } catch (err) {
      this.#onProblem(`cannot close log file ${this.path}: ${(err as Error).message}`);
    }
  }

  #drop(errno: string, message: string): void {
    this.#droppedLines += 1;
    this.#streakLines += 1;
    if (this.#streakErrno !== null) return;
    // Set before calling out, so an onProblem that logs through this file cannot recurse.
    this.#streakErrno = errno;
    this.#onProblem(`${message}; dropping log lines until writing works again`);
  }

  /** An fd on the file currently at `path`, rotated first if `bytes` would not fit. */
  #fdFor(bytes: number): number {
    let stats = lstatOrNull(this.path);
    if (this.#fd !== null && (stats === null || !this.#isOpenFile(stats))) this.#closeFd();
    if (this.#fd === null) stats = this.#open();
    if (stats !== null && stats.isFile() && stats.size > 0n && stats.size + BigInt(bytes) > BigInt(this.#maxFileBytes)) {
      this.#rotate();
      this.#open();
    }
    if (this.#fd === null) throw new Error(`internal: log file ${this.path} not open after rotation`);
    return this.#fd;
  }

  #isOpenFile(stats: BigIntStats): boolean {
    return this.#fileId !== null && stats.ino === this.#fileId.ino && stats.dev === this.#fileId.dev;
  }

  #open(): BigIntStats {
    let opened: { fd: number; stats: BigIntStats };
    try {
      opened = openPrivateFile(this.path, OPEN_FLAGS);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      ensurePrivateDir(dirname(this.path));
      opened = openPrivateFile(this.path, OPEN_FLAGS);
    }
    this.#fd = opened.fd;
    this.#fileId = { dev: opened.stats.dev, ino: opened.stats.ino };
    return opened.stats;
  }

  #closeFd(): void {
    const fd = this.#fd;
    this.#fd = null;
    this.#fileId = null;
    if (fd !== null) closeSync(fd);
  }

  #rotate(): void {
    this.#closeFd();
    if (this.#maxFiles === 1) {
      unlinkIfExists(this.path);
      return;
    }
    // Oldest first, so each rename replaces a file that has already moved on (or is dropped).
    for (let index = this.#maxFiles - 1; index >= 2; index -= 1) {
      renameIfExists(`${this.path}.${index - 1}`, `${this.path}.${index}`);
    }
    renameIfExists(this.path, `${this.path}.1`);
    this.#pruneBeyondMaxFiles();
  }

  /** Rotated files past maxFiles (left by an earlier, larger setting) still count against the disk. */
  #pruneBeyondMaxFiles(): void {
    const prefix = basename(this.path) + '.';
    const dir = dirname(this.path);
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(prefix)) continue;
      const suffix = name.slice(prefix.length);
      if (/^[1-9][0-9]*$/.test(suffix) && Number(suffix) >= this.#maxFiles) unlinkIfExists(join(dir, name));
    }
  }
}

/** Cuts a line longer than a whole file down to fit, ending it with '\n' on a UTF-8 boundary. */
function capLine(bytes: Buffer, maxBytes: number): Buffer {
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes - 1;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1; // Do not split a character.
  return Buffer.concat([bytes.subarray(0, end), Buffer.from('\n')]);
}

/** lstat: a symbolic link put in the file's place is not the open file, so it is never followed. */
function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
