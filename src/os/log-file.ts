// A size-rotated log file: path, path.1 (newest rotated) ... path.<maxFiles-1> (oldest), so disk
// use stays near maxFiles * maxFileBytes. Writing never throws: when the disk is full or the
// directory is unwritable, lines are dropped and counted, the first failure of a streak is reported
// once, and the first successful write afterwards starts with a "dropped N lines" notice.
//
// Two ways in: `write` (a daemon event) and `writeSoon` (a chunk of the worker's output). While the
// disk keeps up, both write at once, synchronously: an event is on disk before a crash it may
// explain, and a chunk costs one lstat + write(2) (a worker printing 200 MB/s once made one of each
// per line and was throttled to a few MB/s, issue #15 item 7). A synchronous write that takes
// longer than SLOW_WRITE_MS means the disk is slow: from then on worker output is queued and written
// asynchronously (write(2) on libuv's thread pool), one batch (at most 1 MiB) at a time, so a slow
// or stalled disk costs the event loop (memory guard, status) that one write, and one per daemon
// event written while nothing is queued (events are few). The queue is bounded
// (`maxPendingBytes`, the batch on the disk included): past it worker lines are dropped and counted
// as for a full disk, rather than growing the daemon or blocking it; a daemon event joins the
// queue behind them, so the file keeps the order things happened in. Once the queue is empty and
// a batch went out faster than SLOW_WRITE_MS, writing is synchronous again. (Always asynchronous
// was measured too: it halved the worker's throughput on a loaded 2-core VM.) `drain()` waits until
// everything queued is written (the daemon's last step); `close()` writes what is queued synchronously.
//
// Each batch is written in as few write(2)s as rotation allows, on an O_APPEND fd, cut only at line
// ends, so concurrent writers interleave whole lines. Before each batch (not each line) the path is
// lstat'ed: if another writer rotated or someone removed the file (or its directory), we follow
// the path instead of appending to an inode nobody will read.
//
// The file is opened as private-file.ts opens files: never through a symbolic link, and only when
// it is a regular file of ours with one link; anything else is not written (issue #14, item 6):
// its lines are dropped and the problem reported, as for a full disk. A missing directory is
// made again as a private one (private-dir.ts).
import { closeSync, constants, lstatSync, readdirSync, renameSync, unlinkSync, write, writeSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { monotonicMs } from './monotonic-clock.js';
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
  /** Bytes `writeSoon` may hold before it drops lines; default DEFAULT_MAX_PENDING_BYTES. */
  maxPendingBytes?: number;
  /**
   * How batches reach the fd: writeSync, and fs.write (the thread pool) once the disk is slow,
   * unless given. Tests pass slow ones to show what a disk that cannot keep up does; nothing else should.
   */
  writeAsync?: AsyncWrite;
  writeSync?: (fd: number, buffer: Buffer, offset: number, length: number) => number;
}

/** A synchronous write slower than this switches to queued, asynchronous writing (see the top). */
export const SLOW_WRITE_MS = 20;
/** One asynchronous batch: small enough that copying it together costs little memory. */
const MAX_BATCH_BYTES = 1024 * 1024;

/** Writes `length` bytes of `buffer` from `offset` to `fd`; resolves to the count written. */
export type AsyncWrite = (fd: number, buffer: Buffer, offset: number, length: number) => Promise<number>;

const fsWriteAsync: AsyncWrite = (fd, buffer, offset, length) =>
  new Promise((resolve, reject) => {
    write(fd, buffer, offset, length, null, (err, written) => (err ? reject(err) : resolve(written)));
  });

/** One batch on its way to the file: its bytes and how far they are written. */
interface Batch {
  bytes: Buffer;
  lines: number;
  /** Leading bytes that are no line of the batch (a dropped-lines notice, a newline). */
  noticeBytes: number;
  done: number;
}

/** One write(2)'s worth of a batch: `bytes` go to `fd`; then the batch resumes at `resume`. */
interface Piece {
  fd: number;
  bytes: Buffer;
  end: number;
  resume: number;
}

/** A few turns' worth of reads from a worker's two pipes (libuv reads up to 64 KiB at a time). */
export const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** Stands for the errno in the dropped-lines notice when the queue, not the disk, refused. */
export const BACKLOG = 'backlog full';

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
  readonly #maxPendingBytes: number;
  /** Encoded at once: a Buffer lives outside V8's heap, so a queue that waits on the disk is not
   * promoted and copied by the garbage collector as queued strings were (measured: half the
   * worker's throughput, 80 MiB of daemon RSS). */
  #pending: { bytes: Buffer; lines: number }[] = [];
  #pendingBytes = 0;
  #pendingLines = 0;
  #flushScheduled: NodeJS.Immediate | null = null;
  readonly #writeAsync: AsyncWrite;
  readonly #writeSync: (fd: number, buffer: Buffer, offset: number, length: number) => number;
  /** The last synchronous write (or the last batch, once queued) took longer than SLOW_WRITE_MS. */
  #diskIsSlow = false;
  /** The batch being written asynchronously, and its size in chars (counted against the bound). */
  #inFlight: Promise<void> | null = null;
  #inFlightBytes = 0;
  /** fds to close once the write in flight is done with them (an fd is never closed under a write). */
  #closeAfterFlight: number[] = [];
  #drainWaiters: (() => void)[] = [];
  /** Lines writeSoon dropped since the last one it queued; whether that streak was reported. */
  #backlogLines = 0;
  #backlogReported = false;

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
    this.#maxPendingBytes = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.#writeAsync = opts.writeAsync ?? fsWriteAsync;
    this.#writeSync = opts.writeSync ?? writeSync;
  }

  /** Lines dropped over this object's life because they could not be written. */
  get droppedLines(): number {
    return this.#droppedLines;
  }

  /**
   * Appends one line (a missing trailing '\\n' is added): now when nothing is queued or being
   * written, otherwise behind what is. Never throws.
   */
  write(line: string): void {
    if (this.#closed) {
      this.#drop(1, 'EBADF', `write to ${this.path} after close()`);
      return;
    }
    this.#enqueue(line.endsWith('\n') ? line : line + '\n', 1);
    // Even on a slow disk an event goes out at once when nothing waits before it: events are few,
    // and one is worth most right before a crash it may explain.
    if (this.#inFlight !== null || this.#flushScheduled !== null || this.#pendingLines > 1) this.#schedule();
    else this.#flushTimed();
  }

  /**
   * Appends `text`, `lines` whole lines each ending with '\\n': now while the disk keeps up,
   * otherwise queued (written at the end of this event-loop turn at the earliest). Past
   * `maxPendingBytes` queued, they are dropped and counted.
   */
  writeSoon(text: string, lines: number): void {
    if (this.#closed) {
      this.#drop(lines, 'EBADF', `write to ${this.path} after close()`);
      return;
    }
    // text.length (UTF-16 units) is at most its UTF-8 size: checked before paying for the encoding.
    if (this.#inFlightBytes + this.#pendingBytes + text.length > this.#maxPendingBytes) {
      this.#droppedLines += lines;
      this.#backlogLines += lines;
      if (this.#backlogReported) return;
      this.#backlogReported = true; // before calling out: onProblem may log through this file
      this.#onProblem(`more than ${this.#maxPendingBytes} bytes of log lines waiting to be written to ${this.path}; dropping log lines until they are`);
      return;
    }
    const queueing = this.#queueing();
    this.#enqueue(text, lines);
    if (queueing || this.#pendingLines > lines) this.#schedule();
    else this.#flushTimed();
  }

  /** Whether writes go through the queue now: the disk is slow, or a batch is on its way. */
  #queueing(): boolean {
    return this.#diskIsSlow || this.#inFlight !== null || this.#flushScheduled !== null;
  }

  #flushTimed(): void {
    const startMs = monotonicMs();
    this.flush();
    if (monotonicMs() - startMs > SLOW_WRITE_MS) this.#diskIsSlow = true;
  }

  /**
   * Writes what is queued now, synchronously, unless a batch is being written (then it follows that
   * batch). Never throws.
   */
  flush(): void {
    if (this.#flushScheduled !== null) {
      clearImmediate(this.#flushScheduled);
      this.#flushScheduled = null;
    }
    if (this.#inFlight !== null || this.#pendingLines === 0) return;
    const { bytes, lines } = this.#takePending();
    this.#writeBatch(bytes, lines);
  }

  /** Resolves once everything queued so far (and after) is written or dropped. Never rejects. */
  drain(): Promise<void> {
    if (this.#inFlight === null && this.#pendingLines === 0) return Promise.resolve();
    if (this.#inFlight === null) this.#pump();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** At the end of this event-loop turn at the latest, the queue goes out as one batch. */
  #schedule(): void {
    if (this.#inFlight !== null || this.#flushScheduled !== null) return;
    this.#flushScheduled = setImmediate(() => {
      this.#flushScheduled = null;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#inFlight !== null) return;
    if (this.#pendingLines === 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const resolve of waiters) resolve();
      return;
    }
    // At most MAX_BATCH_BYTES at a time: the rest waits its turn in the queue, where it is counted.
    const { bytes, lines } = this.#takePending(MAX_BATCH_BYTES);
    this.#inFlightBytes = bytes.length;
    const startMs = monotonicMs();
    this.#inFlight = this.#writeBatchAsync(bytes, lines).then(() => {
      this.#inFlight = null;
      this.#inFlightBytes = 0;
      for (const fd of this.#closeAfterFlight.splice(0)) closeQuietly(fd);
      // The disk keeps up again: back to writing at once when the queue is empty.
      if (this.#pendingLines === 0 && monotonicMs() - startMs <= SLOW_WRITE_MS) this.#diskIsSlow = false;
      // What was queued meanwhile goes out at once, as the next batch.
      this.#pump();
    });
  }

  /** The queue's head up to `maxBytes` (at least one entry), as one batch. */
  #takePending(maxBytes = Infinity): { bytes: Buffer; lines: number } {
    let count = 0;
    let size = 0;
    let lines = 0;
    for (const entry of this.#pending) {
      if (count > 0 && size + entry.bytes.length > maxBytes) break;
      count += 1;
      size += entry.bytes.length;
      lines += entry.lines;
    }
    const taken = this.#pending.splice(0, count);
    const bytes = taken.length === 1 ? taken[0]!.bytes : Buffer.concat(taken.map((e) => e.bytes), size);
    this.#pendingBytes -= size;
    this.#pendingLines -= lines;
    this.#backlogReported = false;
    return { bytes, lines };
  }

  #enqueue(text: string, lines: number): void {
    if (this.#backlogLines > 0) {
      // Where the lines went missing, after those queued before them.
      const notice = this.#droppedNotice(this.#backlogLines, BACKLOG);
      this.#backlogLines = 0;
      this.#push(notice, 1);
    }
    this.#push(text, lines);
  }

  #push(text: string, lines: number): void {
    const bytes = Buffer.from(text, 'utf8');
    this.#pending.push({ bytes, lines });
    this.#pendingBytes += bytes.length;
    this.#pendingLines += lines;
  }

  #beginBatch(batch: Buffer, lines: number): Batch {
    let prefix = '';
    if (this.#streakErrno !== null) prefix = this.#droppedNotice(this.#streakLines, this.#streakErrno);
    if (this.#lineIsOpen) prefix = '\n' + prefix;
    if (prefix === '') return { bytes: batch, lines, noticeBytes: 0, done: 0 };
    const head = Buffer.from(prefix, 'utf8');
    return { bytes: Buffer.concat([head, batch]), lines, noticeBytes: head.length, done: 0 };
  }

  /**
   * The pieces the batch is written in, rotating between them as needed. The caller writes each
   * piece whole before asking for the next, or records what it wrote (#pieceFailed) and stops.
   */
  *#pieces(b: Batch): Generator<Piece, void, void> {
    const { bytes } = b;
    let { fd, size } = this.#openFile();
    while (b.done < bytes.length) {
      const room = this.#maxFileBytes - size;
      let end: number; // write bytes[done, end)
      let resume: number; // where the next piece starts
      if (bytes.length - b.done <= room) {
        end = resume = bytes.length;
      } else {
        // The whole lines that fit; none fits: a new file, or, in an empty one, the line cut to fit.
        const lastNewline = room > 0 ? bytes.lastIndexOf(0x0a, b.done + room - 1) : -1;
        if (lastNewline >= b.done) {
          end = resume = lastNewline + 1;
        } else if (size > 0) {
          ({ fd, size } = this.#rotateAndOpen());
          continue;
        } else {
          const newline = bytes.indexOf(0x0a, b.done);
          resume = newline === -1 ? bytes.length : newline + 1;
          end = cutEnd(bytes, b.done, this.#maxFileBytes);
        }
      }
      const piece = end === resume ? bytes.subarray(b.done, end) : Buffer.concat([bytes.subarray(b.done, end), NEWLINE]);
      yield { fd, bytes: piece, end, resume };
      size += piece.length;
      b.done = resume;
    }
  }

  #pieceFailed(b: Batch, piece: Piece, written: number): void {
    if (written > 0) this.#lineIsOpen = true;
    b.done += Math.min(written, piece.end - b.done);
  }

  #writeBatch(batch: Buffer, lines: number): void {
    const b = this.#beginBatch(batch, lines);
    try {
      for (const piece of this.#pieces(b)) {
        let written = 0;
        try {
          while (written < piece.bytes.length) written += this.#writeSync(piece.fd, piece.bytes, written, piece.bytes.length - written);
        } catch (err) {
          this.#pieceFailed(b, piece, written);
          throw err;
        }
      }
    } catch (err) {
      this.#batchFailed(b, err);
      return;
    }
    this.#batchWritten();
  }

  async #writeBatchAsync(batch: Buffer, lines: number): Promise<void> {
    let b: Batch | null = null;
    try {
      b = this.#beginBatch(batch, lines);
      for (const piece of this.#pieces(b)) {
        let written = 0;
        try {
          while (written < piece.bytes.length) written += await this.#writeAsync(piece.fd, piece.bytes, written, piece.bytes.length - written);
        } catch (err) {
          this.#pieceFailed(b, piece, written);
          throw err;
        }
      }
    } catch (err) {
      if (b !== null) this.#batchFailed(b, err);
      else this.#drop(lines, 'EIO', `cannot write log file ${this.path}: ${(err as Error).message}`);
      return;
    }
    this.#batchWritten();
  }

  #batchFailed(b: Batch, err: unknown): void {
    const e = err as NodeJS.ErrnoException;
    let message = `cannot write log file ${this.path}: ${e.message}`;
    try {
      this.#closeFd(); // Reopen on the next write: the directory may come back, the disk may free up.
    } catch (closeErr) {
      message += `; closing it failed too: ${(closeErr as Error).message}`;
    }
    // A line counts as written once its newline is; the notice is no line of the batch.
    const noticeLeft = b.done < b.noticeBytes;
    const lost = noticeLeft ? b.lines : countNewlines(b.bytes, b.done);
    this.#drop(lost, e.code ?? 'EIO', message);
  }

  #batchWritten(): void {
    this.#lineIsOpen = false;
    this.#streakLines = 0;
    this.#streakErrno = null;
  }

  /**
   * Writes what is queued synchronously and closes the file. While a batch is still being written
   * (the daemon gave drain() its time and moves on), the rest is appended beside it: whole lines
   * still, in order unless that batch's write is itself still waiting on the disk.
   */
  close(): void {
    if (this.#backlogLines > 0) this.#enqueue('', 0); // the notice of the last drops
    if (this.#flushScheduled !== null) clearImmediate(this.#flushScheduled);
    this.#flushScheduled = null;
    if (this.#pendingLines > 0) {
      const { bytes, lines } = this.#takePending();
      this.#writeBatch(bytes, lines);
    }
    this.#closed = true;
    try {
      this.#closeFd();
    } catch (err) {
      this.#onProblem(`cannot close log file ${this.path}: ${(err as Error).message}`);
    }
  }

  #drop(lines: number, errno: string, message: string): void {
    this.#droppedLines += lines;
    this.#streakLines += lines;
    if (this.#streakErrno !== null) return;
    // Set before calling out, so an onProblem that logs through this file cannot recurse.
    this.#streakErrno = errno;
    this.#onProblem(`${message}; dropping log lines until writing works again`);
  }

  /** An fd on the file currently at `path`, and that file's size: one lstat per batch. */
  #openFile(): { fd: number; size: number } {
    let stats = lstatOrNull(this.path);
    if (this.#fd !== null && (stats === null || !this.#isOpenFile(stats))) this.#closeFd();
    if (this.#fd === null) stats = this.#open();
    if (this.#fd === null || stats === null) throw new Error(`internal: log file ${this.path} not open`);
    return { fd: this.#fd, size: Number(stats.size) };
  }

  #rotateAndOpen(): { fd: number; size: number } {
    this.#rotate();
    const stats = this.#open();
    if (this.#fd === null) throw new Error(`internal: log file ${this.path} not open after rotation`);
    return { fd: this.#fd, size: Number(stats.size) };
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
    if (fd === null) return;
    // A write on the thread pool may still be using it; closed when that write is done.
    if (this.#inFlight !== null) this.#closeAfterFlight.push(fd);
    else closeSync(fd);
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

const NEWLINE = Buffer.from('\n');

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Closing an fd we opened can only fail with EIO after a failed write, reported already.
  }
}

/** Where to cut the line at `start` so that it and a '\\n' fit in `maxBytes`, on a UTF-8 boundary. */
function cutEnd(bytes: Buffer, start: number, maxBytes: number): number {
  let end = start + maxBytes - 1;
  while (end > start && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1; // Do not split a character.
  return end;
}

function countNewlines(bytes: Buffer, from: number): number {
  let count = 0;
  for (let at = bytes.indexOf(0x0a, from); at !== -1; at = bytes.indexOf(0x0a, at + 1)) count += 1;
  return count;
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
