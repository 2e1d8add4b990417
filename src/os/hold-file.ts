// The file in which a worker says when it wants to be started again (`$AUTOPILOTD_HOLD_UNTIL_FILE`,
// issue #17). One path per generation, so that a run can never be held by what an earlier run
// wrote, in a directory the daemon makes with mkdtemp (mode 0700) beside its pid file, in the
// pid file's private directory: no other user can plant a time in it or read one. A daemon killed
// with SIGKILL leaves its directory there, and the next daemon of that pid file removes it (only
// the holder of the pid file's lock uses that name). It is read once, at the worker's exit, opened
// without following a link and without blocking (a FIFO put there must not hang the daemon), and
// removed then.

import { closeSync, constants, fstatSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type HoldFileReading =
  | { kind: 'absent' }
  | { kind: 'unreadable'; reason: string }
  | { kind: 'text'; text: string };

/** More than any time stamp needs; what is past it is not read. */
const MAX_HOLD_FILE_BYTES = 256;

/** Where the hold files of the daemon with this pid file go: `<pid_file>.hold-XXXXXX`. */
export interface HoldFilePlace {
  parent: string;
  prefix: string;
}

export function holdFilePlace(pidFile: string): HoldFilePlace {
  return { parent: dirname(pidFile), prefix: `${basename(pidFile)}.hold-` };
}

/** mkdtemp's suffix: six characters. */
const MKDTEMP_SUFFIX = /^[A-Za-z0-9]{6}$/;

/**
 * Removes the hold directories an earlier daemon of this pid file left (it was killed with
 * SIGKILL): called with the pid file's lock held, so none of them is in use. Returns their paths.
 */
export function removeStaleHoldDirs(place: HoldFilePlace): string[] {
  let names: string[];
  try {
    names = readdirSync(place.parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(place.prefix) || !MKDTEMP_SUFFIX.test(name.slice(place.prefix.length))) continue;
    const path = join(place.parent, name);
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

export class HoldFiles {
  private dir: string | null = null;

  constructor(private readonly place: HoldFilePlace) {}

  /** The path for `generation`, the directory made on first use; throws when it cannot be made. */
  pathFor(generation: number): string {
    this.dir ??= mkdtempSync(join(this.place.parent, this.place.prefix));
    return join(this.dir, `hold-until.${generation}`);
  }

  /** What the worker of `generation` wrote, then the file is removed. */
  take(generation: number): HoldFileReading {
    if (this.dir === null) return { kind: 'absent' };
    const path = join(this.dir, `hold-until.${generation}`);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kind: 'absent' };
      removeQuietly(path);
      return { kind: 'unreadable', reason: code === 'ELOOP' ? 'a symbolic link' : `open: ${code ?? (err as Error).message}` };
    }
    try {
      if (!fstatSync(fd).isFile()) return { kind: 'unreadable', reason: 'not a regular file' };
      const buffer = Buffer.alloc(MAX_HOLD_FILE_BYTES);
      const bytes = readSync(fd, buffer, 0, MAX_HOLD_FILE_BYTES, 0);
      return { kind: 'text', text: buffer.subarray(0, bytes).toString('utf8') };
    } catch (err) {
      return { kind: 'unreadable', reason: `read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    } finally {
      closeSync(fd);
      removeQuietly(path);
    }
  }

  /** Removes the directory and anything a worker left in it. */
  dispose(): void {
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // A file left behind holds no run back: the next one has its own path, and dispose() removes the directory.
  }
}
