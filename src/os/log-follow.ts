// Following the rotated logs written by RotatingLogFile (log-file.ts), for `autopilotd logs -f`.
//
// followFile polls like `tail -F`. It keeps its fd on the file it is reading, so when the writer
// rotates (path -> path.1, new path), it first reads the old inode to its end, then any files that
// were rotated past it between two polls (found by inode among path.1, path.2, ...), then the new
// file from its start: no line is lost or repeated as long as the old inode is still one of the
// kept files. Polling (not inotify) because it also works on network filesystems and rotation
// shows up as a plain inode change.
import { closeSync, fstatSync } from 'node:fs';
import {
  CHUNK_BYTES, NEWLINE, lastLinesAcrossFiles, lastNewlineEnd, openIfExists, readAt, sameFile, splitLines,
  type OpenFile,
} from './log-tail.js';

/** Rotated files looked at when the caller does not say how many the writer keeps. */
const DEFAULT_SCAN_FILES = 100;

export interface FollowOptions {
  /**
   * Deliver the last N complete lines first (across rotated files), read from the same open file
   * the follow then continues from, so `logs -n N -f` has no gap and no overlap.
   */
  initialLines?: number;
  /** Files kept by the writer (its maxFiles); bounds the rotated files looked at. */
  maxFiles?: number;
  /**
   * Takes the initial lines instead of onLines, called once even when there are none: a caller
   * that filters them (`logs --stream`) reads more than it shows and keeps the last it wants.
   */
  onInitialLines?: (lines: string[]) => void;
}

/** Follows appends to `path` across rotation and truncation until `signal` aborts. */
export async function followFile(
  path: string,
  onLines: (lines: string[]) => void,
  signal: AbortSignal,
  pollMs = 200,
  options: FollowOptions = {},
): Promise<void> {
  if (signal.aborted) return;
  const follower = new Follower(path, onLines, options.maxFiles ?? DEFAULT_SCAN_FILES);
  try {
    follower.start(options.initialLines ?? 0, options.maxFiles ?? DEFAULT_SCAN_FILES, options.onInitialLines);
    while (!signal.aborted) {
      await sleepUnlessAborted(pollMs, signal);
      if (!signal.aborted) follower.poll();
    }
  } finally {
    follower.close();
  }
}

class Follower {
  #current: OpenFile | null = null;
  /** While `path` is missing: the rotated files that existed at start (not ours to deliver). */
  #rotatedAtStart: OpenFile[] = [];
  /** Bytes after the last '\n' read so far: a line still being written. */
  #partial: Buffer = Buffer.alloc(0);

  constructor(
    readonly path: string,
    readonly onLines: (lines: string[]) => void,
    readonly scanFiles: number,
  ) {}

  /** Positions after the last complete line (an unfinished line is delivered once finished). */
  start(initialLines: number, maxFiles: number, onInitial?: (lines: string[]) => void): void {
    const file = openIfExists(this.path);
    if (file === null) {
      onInitial?.([]);
      // Nothing yet: whatever appears is new and is read from its start, including files the
      // writer rotates before our first look. Old rotated files are remembered so they are not.
      this.#rotatedAtStart = this.#openRotated(null, null).files;
      for (const old of this.#rotatedAtStart) closeSync(old.fd);
      return;
    }
    file.offset = lastNewlineEnd(file, Number(fstatSync(file.fd, { bigint: true }).size));
    this.#current = file;
    const initial = initialLines > 0 ? lastLinesAcrossFiles(this.path, initialLines, maxFiles, file) : [];
    if (onInitial !== undefined) onInitial(initial);
    else this.#emit(initial);
  }

  poll(): void {
    const lines: string[] = [];
    // Look at the path before reading, so that when it turns out to be a new file, the read
    // below comes after the writer's last append to the old one.
    const latest = openIfExists(this.path);
    const current = this.#current;
    if (latest === null || (current !== null && sameFile(current, latest))) {
      // Same file, or rotated away and not yet recreated (or deleted): read what we hold.
      if (latest !== null) closeSync(latest.fd);
      if (current !== null) {
        if (fstatSync(current.fd, { bigint: true }).size < BigInt(current.offset)) {
          // Truncated in place: what was there is gone; start over on what is there now.
          current.offset = 0;
          this.#partial = Buffer.alloc(0);
        }
        this.#drain(current, lines);
      }
      this.#emit(lines);
      return;
    }
    // The writer has moved to a new file, so the old one is complete: read its last lines,
    // then the files rotated past it since the last poll, oldest first.
    let rotated: OpenFile[] = [];
    try {
      rotated = this.#rotatedSince(current, latest);
      for (const file of current === null ? rotated : [current, ...rotated]) {
        this.#drain(file, lines);
        this.#finishFile(lines);
      }
    } catch (err) {
      closeSync(latest.fd);
      throw err;
    } finally {
      for (const file of rotated) closeSync(file.fd);
    }
    if (current !== null) closeSync(current.fd);
    this.#rotatedAtStart = [];
    this.#current = latest;
    this.#drain(latest, lines);
    this.#emit(lines);
  }

  close(): void {
    if (this.#current !== null) closeSync(this.#current.fd);
    this.#current = null;
  }

  /**
   * Files rotated after `old` (or, when nothing was open, after start), returned oldest first.
   * If `old` is not among path.1, path.2, ... (deleted, or replaced by something else), none are:
   * only files provably newer than what was read can be read without repeating lines.
   */
  #rotatedSince(old: OpenFile | null, latest: OpenFile): OpenFile[] {
    const { files, foundStop } = this.#openRotated(old, latest);
    if (old !== null && !foundStop) {
      for (const file of files) closeSync(file.fd);
      return [];
    }
    const known = this.#rotatedAtStart;
    const newer: OpenFile[] = [];
    for (const file of files) {
      if (old === null && known.some((k) => sameFile(k, file))) closeSync(file.fd);
      else newer.push(file);
    }
    return newer.reverse();
  }

  /**
   * Opens path.1, path.2, ... newest first, until `stopAt` or the scan limit. It does not stop at
   * a missing index: while the writer rotates, renames leave one empty index moving down the list.
   * Scanning up while files only move up sees every file at least once.
   */
  #openRotated(stopAt: OpenFile | null, skip: OpenFile | null): { files: OpenFile[]; foundStop: boolean } {
    const files: OpenFile[] = [];
    for (let index = 1; index < this.scanFiles; index += 1) {
      const file = openIfExists(`${this.path}.${index}`);
      if (file === null) continue;
      if (stopAt !== null && sameFile(file, stopAt)) {
        closeSync(file.fd);
        return { files, foundStop: true };
      }
      // A rotation during this scan shifts files up one index, so one can be seen twice.
      if ((skip !== null && sameFile(file, skip)) || files.some((seen) => sameFile(seen, file))) closeSync(file.fd);
      else files.push(file);
    }
    return { files, foundStop: false };
  }

  #drain(file: OpenFile, lines: string[]): void {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const bytesRead = readAt(file, buffer, 0, CHUNK_BYTES, file.offset);
      if (bytesRead === 0) return;
      file.offset += bytesRead;
      const chunk = buffer.subarray(0, bytesRead);
      const lastNewline = chunk.lastIndexOf(NEWLINE);
      if (lastNewline === -1) {
        this.#partial = Buffer.concat([this.#partial, chunk]);
        continue;
      }
      const ended = chunk.subarray(0, lastNewline + 1);
      splitLines(this.#partial.length > 0 ? Buffer.concat([this.#partial, ended]) : ended, lines);
      this.#partial = Buffer.from(chunk.subarray(lastNewline + 1)); // A copy: `buffer` is reused.
    }
  }

  /** A rotated file gets no more writes, so an unterminated last line is as complete as it gets. */
  #finishFile(lines: string[]): void {
    if (this.#partial.length > 0) lines.push(this.#partial.toString('utf8'));
    this.#partial = Buffer.alloc(0);
  }

  #emit(lines: string[]): void {
    if (lines.length > 0) this.onLines(lines);
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
