// One daemon per pid file and per control socket: the daemon holds an exclusive flock(2) on a lock
// file beside each. The kernel drops a flock when the last fd of its open file description closes,
// so a daemon killed by SIGKILL leaves no stale lock; unlike an abstract Unix socket (the lock
// before issue #14), a file has an owner and a mode, so no other user can take or fake it.
//
// Node has no flock(2). A flock belongs to the open file description, not to the process that
// called it, so flock(1) from util-linux is handed a dup of our fd and locks our description; the
// lock outlives that short-lived helper and stays ours until this process closes the fd or dies.
// Node opens files with O_CLOEXEC: the worker does not inherit the fd, so it cannot keep the lock.
//
// A lock file is never removed: unlinking it would let one daemon lock the unlinked inode while
// the next locks a new file at the same path, and both would run.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';

const LOCK_FILE_MODE = 0o600;
/** flock -n exits with this when another description holds the lock (util-linux's default). */
const FLOCK_CONFLICT = 1;
/** flock -n never waits; this only bounds a wedged helper. */
const FLOCK_TIMEOUT_MS = 10_000;

export interface InstanceLock {
  /** The lock file, for diagnostics. */
  readonly path: string;
  /** Closes the fd, which drops the lock. Idempotent. */
  release(): void;
}

/** Another process (or this one, through another fd) holds the lock file. */
export class AlreadyRunningError extends Error {
  readonly code = 'already_running';
  constructor(readonly lockPath: string) {
    super(`autopilotd is already running: another daemon holds ${lockPath}`);
    this.name = 'AlreadyRunningError';
  }
}

/** The lock could not be taken for another reason (no flock(1), a file that is not ours, EACCES). */
export class LockError extends Error {
  readonly code = 'lock_failed';
  constructor(readonly lockPath: string, message: string, options?: ErrorOptions) {
    super(`cannot take the instance lock ${lockPath}: ${message}`, options);
    this.name = 'LockError';
  }
}

/** The lock file that guards `path` (a pid file or a socket path). */
export function lockPathFor(path: string): string {
  return `${path}.lock`;
}

/**
 * Takes the exclusive lock on `lockPath` without waiting, creating the file (0600) if needed. Its
 * directory must be private to this user: whoever can write there can replace the file.
 */
export function acquireInstanceLock(lockPath: string): InstanceLock {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink planted at the path fails (ELOOP) instead of creating a file elsewhere.
    fd = openSync(lockPath, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, LOCK_FILE_MODE);
  } catch (err) {
    throw new LockError(lockPath, `open failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid!();
    if (!st.isFile() || st.uid !== uid) {
      throw new LockError(lockPath, `${st.isFile() ? 'a file' : 'not a regular file'} owned by uid ${st.uid}; it must be a regular file owned by uid ${uid}`);
    }
    const flock = spawnSync('flock', ['--nonblock', '--exclusive', '3'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      timeout: FLOCK_TIMEOUT_MS,
      encoding: 'utf8',
    });
    if (flock.error !== undefined) {
      const code = (flock.error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'flock(1) was not found in PATH; install util-linux' : `running flock(1) failed: ${code ?? flock.error.message}`;
      throw new LockError(lockPath, why, { cause: flock.error });
    }
    if (flock.status === FLOCK_CONFLICT) throw new AlreadyRunningError(lockPath);
    if (flock.status !== 0) {
      const how = flock.status === null ? `was killed by ${flock.signal}` : `exited ${flock.status}`;
      throw new LockError(lockPath, `flock(1) ${how}${flock.stderr.trim() === '' ? '' : `: ${flock.stderr.trim()}`}`);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let open = true;
  return {
    path: lockPath,
    release: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
