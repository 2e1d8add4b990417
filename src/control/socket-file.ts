// The socket's place in the file system: a private directory, no clobbering of live daemons or
// user files, a 0600 socket from the first instant, and removal only of our own inode.
import { randomBytes } from '../os/random-bytes.js';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { currentUid, ensurePrivateDir, PrivateDirError, privateDirRequirement } from '../os/private-dir.js';

export type SocketSetupCode =
  | 'unsafe_socket_dir'
  | 'already_running'
  | 'not_a_socket'
  | 'socket_path_too_long';

/** Why the server refused to start; `path` is the offending file or directory. */
export class SocketSetupError extends Error {
  readonly code: SocketSetupCode;
  readonly path: string;
  constructor(code: SocketSetupCode, filePath: string, message: string) {
    super(message);
    this.name = 'SocketSetupError';
    this.code = code;
    this.path = filePath;
  }
}

/** sun_path is 108 bytes on Linux including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface SocketIdentity {
  dev: number;
  ino: number;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * Makes the socket's directory private (private-dir.ts): created 0700 if missing, refused when it
 * or the way to it lets another user replace our socket with theirs.
 */
export function ensureSocketDir(dir: string): void {
  try {
    ensurePrivateDir(dir);
  } catch (err) {
    if (!(err instanceof PrivateDirError)) throw err;
    throw new SocketSetupError(
      'unsafe_socket_dir',
      err.problem.path,
      `unsafe socket directory: ${err.problem.text}; it must be ${privateDirRequirement(currentUid())}`,
    );
  }
}

/** Resolves true when something accepts connections at socketPath, false on ECONNREFUSED. */
function probeLive(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err) => {
      probe.destroy();
      if (errnoOf(err) === 'ECONNREFUSED' || errnoOf(err) === 'ENOENT') resolve(false);
      else reject(new Error(`connect ${socketPath}: ${errnoOf(err) ?? err.message}`, { cause: err }));
    });
  });
}

/**
 * Clears the way for a new socket at socketPath. Returns true when a stale socket was removed.
 * A live socket means another daemon; anything that is not a socket is a user file we keep.
 */
export async function clearStaleSocket(socketPath: string): Promise<boolean> {
  const st = lstatIfExists(socketPath);
  if (st === null) return false;
  if (!st.isSocket()) {
    throw new SocketSetupError(
      'not_a_socket',
      socketPath,
      `${socketPath} exists and is not a socket (mode 0${st.mode.toString(8)}); refusing to replace it`,
    );
  }
  if (await probeLive(socketPath)) {
    throw new SocketSetupError('already_running', socketPath, `another daemon is listening on ${socketPath}`);
  }
  try {
    fs.unlinkSync(socketPath);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
  return true;
}

function listenOnce(server: net.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // bind(2) runs synchronously inside listen(); the socket inode takes its mode from the umask
    // at that instant. With 0o177 it is born 0600: no window in which others may connect, unlike
    // listen-then-chmod. The mask is process-wide, so restore it before anything else can run.
    const previous = process.umask(0o177);
    try {
      server.listen(socketPath);
    } finally {
      process.umask(previous);
    }
  });
}

/**
 * Binds server to socketPath and returns the socket's identity.
 *
 * libuv unlinks the bound path when the server closes, whatever file is there by then. So we bind
 * a private temporary name and hard-link it to socketPath: libuv later unlinks only the (already
 * removed) temporary name, and we unlink socketPath ourselves after comparing inodes. link(2)
 * also fails with EEXIST instead of replacing a socket another daemon created since our check.
 */
export async function bindSocket(server: net.Server, socketPath: string): Promise<SocketIdentity> {
  const dir = path.dirname(socketPath);
  const tempPath = path.join(dir, `.${randomBytes(4).toString('hex')}`);
  for (const p of [socketPath, tempPath]) {
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) {
      throw new SocketSetupError(
        'socket_path_too_long',
        p,
        `socket path ${p} is ${Buffer.byteLength(p)} bytes; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}`,
      );
    }
  }
  await listenOnce(server, tempPath);
  try {
    const st = fs.statSync(tempPath);
    if ((st.mode & 0o777) !== 0o600) {
      throw new Error(`socket ${tempPath} was created with mode 0${(st.mode & 0o777).toString(8)}, expected 0600`);
    }
    try {
      fs.linkSync(tempPath, socketPath);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') {
        throw new SocketSetupError('already_running', socketPath, `${socketPath} was created by someone else while we started`);
      }
      throw err;
    }
    fs.unlinkSync(tempPath);
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
}

/** Unlinks socketPath only if it is still our socket; returns whether it did. */
export function removeOwnSocket(socketPath: string, own: SocketIdentity): boolean {
  const st = lstatIfExists(socketPath);
  if (st === null) return false;
  if (st.dev !== own.dev || st.ino !== own.ino) return false;
  fs.unlinkSync(socketPath);
  return true;
}

/** lstat, with a missing path as null rather than an error. */
function lstatIfExists(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw err;
  }
}
