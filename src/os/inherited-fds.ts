// Descriptors the daemon inherited from whoever started it, beyond stdin, stdout and stderr: a
// shell's pipe at fd 251, a test runner's or a build tool's. Held open, they keep the other end
// waiting for an EOF that never comes, and the worker inherits them in turn (issue #14, item 9).
//
// Node opens all of its own descriptors with O_CLOEXEC, and at start it sets O_CLOEXEC on the
// ones it inherited too, but only up to a point: libuv's uv_disable_stdio_inheritance() (called
// from Node's PlatformInit) marks fds 0..15 and then continues only until the first closed fd.
// So fds 3..15 never reach the worker (libuv's child setup closes nothing; it relies on CLOEXEC),
// while an fd like 251 does. That also tells them apart here: a descriptor without O_CLOEXEC is
// not Node's, and closing it cannot pull one out from under libuv. The low ones, now marked like
// Node's own, cannot be told from them and stay open in the daemon, though never in the worker.
import { closeSync, readdirSync, readFileSync } from 'node:fs';

/** asm-generic/fcntl.h, the value on every architecture Node supports on Linux. */
const O_CLOEXEC = 0o2000000;

/**
 * Closes every descriptor >= 3 that lacks O_CLOEXEC, except those in `keep` and the IPC channel
 * of a Node parent (NODE_CHANNEL_FD, in use by Node itself). Returns the fds it closed.
 */
export function closeInheritedFds(keep: ReadonlySet<number> = new Set()): number[] {
  const channelFd = (process.channel as { fd?: number } | undefined)?.fd;
  const closed: number[] = [];
  // The listing includes the directory's own fd, closed by the time it is looked at.
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd < 3 || keep.has(fd) || fd === channelFd) continue;
    const flags = fdFlags(fd);
    if (flags === null || (flags & O_CLOEXEC) !== 0) continue;
    closeSync(fd);
    closed.push(fd);
  }
  return closed;
}

/** The open flags of `fd` (the octal "flags:" line of /proc/self/fdinfo), or null once it is closed. */
function fdFlags(fd: number): number | null {
  let info: string;
  try {
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const match = /^flags:\s*([0-7]+)$/m.exec(info);
  if (match === null) throw new Error(`/proc/self/fdinfo/${fd} has no flags line: ${JSON.stringify(info)}`);
  return parseInt(match[1]!, 8);
}
