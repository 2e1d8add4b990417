// Whether a pid read from a file (a pid file, an instance record) names a live process of ours.
// Only a hint: the pid may have been reused by another of our processes since the file was
// written. Callers that act on the answer confirm it another way or only ever refrain from acting.
import type { ProcTable } from './proc-table.js';

/** True while `pid` exists, is not a zombie, and its real uid is `uid`. */
export function isLiveProcessOf(table: ProcTable, pid: number, uid: number): boolean {
  const info = table.read(pid);
  if (info === null || info.state === 'Z' || info.state === 'X') return false;
  return table.uidOf(pid) === uid;
}
