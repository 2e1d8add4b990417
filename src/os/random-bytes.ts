// Random bytes for the instance id and temporary file names, read from the kernel's /dev/urandom.
// node:crypto gives the same bytes, but loading it (its JS modules and OpenSSL's initialisation)
// costs the daemon ~2 MiB of RSS for a few ids (BENCHMARKS.md, "Daemon memory").

import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

/** `n` bytes from /dev/urandom; from node:crypto only where that device cannot be read. */
export function randomBytes(n: number): Buffer {
  const bytes = Buffer.alloc(n);
  let fd: number;
  try {
    fd = openSync('/dev/urandom', 'r');
  } catch {
    // A sandbox without /dev: the crypto module reaches the same kernel source by getrandom().
    return (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')).randomBytes(n);
  }
  try {
    for (let got = 0; got < n;) {
      const read = readSync(fd, bytes, got, n - got, null);
      if (read === 0) throw new Error('/dev/urandom ended');
      got += read;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}
