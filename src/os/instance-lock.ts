// One daemon per control socket path. The lock is a listener on a Linux abstract-namespace Unix
// socket: bind() is atomic (a second bind gets EADDRINUSE), and the kernel drops the name when the
// last fd closes, so a daemon killed by SIGKILL leaves no stale lock behind (unlike a PID file or a
// flock'd file someone deleted). Abstract names are per network namespace: two daemons in different
// netns do not see each other's lock.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';

export interface InstanceLock {
  /** The abstract socket name (without the leading NUL), for diagnostics. */
  readonly name: string;
  release(): Promise<void>;
}

/** Another process (or this one) already holds the lock for this socket path. */
export class AlreadyRunningError extends Error {
  readonly code = 'already_running';
  constructor(
    readonly socketPath: string,
    readonly lockName: string,
  ) {
    super(`autopilotd is already running for socket ${socketPath} (lock @${lockName} is held)`);
    this.name = 'AlreadyRunningError';
  }
}

export function instanceLockName(socketPath: string, uid: number): string {
  const digest = createHash('sha256').update(resolve(socketPath)).digest('hex');
  return `autopilotd.lock.${uid}.${digest.slice(0, 32)}`;
}

export async function acquireInstanceLock(socketPath: string, uid: number): Promise<InstanceLock> {
  const name = instanceLockName(socketPath, uid);
  // The lock only exists to be bound; anyone who connects gets hung up on.
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolveListen, rejectListen) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        rejectListen(new AlreadyRunningError(resolve(socketPath), name));
      } else {
        rejectListen(
          new Error(`cannot take instance lock: listen(@${name}) failed: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolveListen();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen('\0' + name);
  });
  // Holding the lock must not by itself keep the daemon's event loop alive.
  server.unref();
  // Only accept() can fail from here on (e.g. EMFILE when someone pokes the lock); that must not
  // crash the daemon, and it must not go unseen either.
  server.on('error', (err: NodeJS.ErrnoException) => {
    process.emitWarning(`instance lock @${name}: ${err.syscall ?? 'socket'} failed: ${err.code ?? err.message}`);
  });
  return { name, release: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose, rejectClose) => {
    if (!server.listening) {
      resolveClose();
      return;
    }
    server.close((err) => (err ? rejectClose(err) : resolveClose()));
  });
}
