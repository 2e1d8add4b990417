// After an internal error the daemon's own state may be what is broken, so the orderly stop gets a
// deadline: once it passes, whatever carries the instance marker is SIGKILLed and the daemon exits
// (70) at once. Its pid file and record stay: the next start treats them as a crashed daemon's
// (instance-files.ts) and stops any tree they left.
import type { Logger } from '../log/logger.js';
import type { ProcTable } from '../os/proc-table.js';
import type { DescendantWalker } from '../os/descendant-walk.js';
import type { ProcessInfo } from '../os/proc-table.js';
import { findTree, type TreeIdentity } from '../os/process-tree.js';
import { signalIfSame } from '../os/signal.js';

export interface FatalStopDeadline {
  deadlineMs: number;
  /** The tree to end: by marker only (the worker's pid and group may be stale by then). */
  identity: () => TreeIdentity;
  table: ProcTable;
  /** The daemon's descendant walker, when it is a subreaper: its worker tree is killed too (it may not carry the marker). */
  walker?: DescendantWalker | null;
  logger: Logger;
  /** Closes what must be closed and exits; called once, when the deadline passes. */
  exit: () => void;
}

/** Arms the deadline; the timer does not keep the process alive (an orderly exit simply wins). */
export function armFatalStopDeadline(opts: FatalStopDeadline): NodeJS.Timeout {
  return setTimeout(() => {
    const members = doomed(opts);
    opts.logger.emit({ kind: 'internal-error', message: `the shutdown after an internal error did not finish in ${opts.deadlineMs} ms; killing ${members.length} marked processes and exiting` });
    for (const p of members) {
      // As every other signal of the daemon: only if the pid still names the process scanned (through
      // a pidfd opened and checked for this signal, where the native helper has them).
      try {
        signalIfSame(opts.table, p, 'SIGKILL');
      } catch (err) {
        opts.logger.emit({ kind: 'internal-error', message: `kill(${p.pid}, SIGKILL): ${(err as Error).message}` });
      }
    }
    opts.exit();
  }, opts.deadlineMs).unref();
}

/** Every process carrying the marker, and the worker tree the walker finds (each once). */
function doomed(opts: FatalStopDeadline): ProcessInfo[] {
  const identity = opts.identity();
  const byPid = new Map(findTree(opts.table, identity).map((p) => [p.pid, p]));
  for (const p of opts.walker?.workerTree(identity).members ?? []) if (!byPid.has(p.pid)) byPid.set(p.pid, p);
  return [...byPid.values()];
}
