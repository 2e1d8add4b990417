// A temp folder for one test file, removed when the file's tests end, with a fresh subfolder per
// test; child processes registered with track() are killed by PID at the same time.

import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

export interface ScratchArea {
  root: string;
  freshDir(): string;
  track<C extends ChildProcess>(child: C): C;
}

/** `mode` loosens the root when a test runs part of itself as another user. */
export function scratchArea(prefix: string, mode?: number): ScratchArea {
  const root = mkdtempSync(join(tmpdir(), prefix));
  if (mode !== undefined) chmodSync(root, mode);
  const children: ChildProcess[] = [];
  let count = 0;
  after(() => {
    for (const child of children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root,
    freshDir() {
      count += 1;
      const dir = join(root, String(count));
      mkdirSync(dir);
      return dir;
    },
    track(child) {
      children.push(child);
      return child;
    },
  };
}
