// Reads the heartbeat file's mtime for the health policy (src/policy/health.ts decides what it means).
import { statSync } from 'node:fs';
import { errnoOf } from './proc-table.js';

export type HeartbeatStat =
  | { kind: 'missing' }
  | { kind: 'mtime'; mtimeMs: number }
  /** Not readable for another reason (EACCES, EIO, ...): no verdict; `reason` names path and errno. */
  | { kind: 'unknown'; reason: string };

export function statHeartbeat(path: string): HeartbeatStat {
  try {
    return { kind: 'mtime', mtimeMs: statSync(path).mtimeMs };
  } catch (err) {
    const code = errnoOf(err);
    // A missing directory on the way is a file not written yet, like a missing file.
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    return { kind: 'unknown', reason: `stat ${path}: ${code ?? (err as Error).message}` };
  }
}
