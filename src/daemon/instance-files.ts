// The files that make this daemon the one instance of its configuration: the instance locks, and
// the PID file with its instance record, written only once the previous instance's orphaned tree
// (if any) is gone.

import { dirname } from 'node:path';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { acquireInstanceLock, lockPathFor, type InstanceLock } from '../os/instance-lock.js';
import { readInstanceRecord, removeInstanceRecord, type InstanceRecord } from '../os/pid-file.js';
import { ensurePrivateDir } from '../os/private-dir.js';
import type { ProcTable } from '../os/proc-table.js';
import { isLiveProcessOf } from '../os/process-alive.js';
import { findTree } from '../os/process-tree.js';
import { stopTree } from '../os/tree-stop.js';

/** This process's start time in clock ticks, as /proc shows it to whoever checks the record. */
export function ownStartTicks(table: ProcTable): number {
  const self = table.read(process.pid);
  if (self === null) throw new Error(`cannot read /proc/${process.pid}/stat: our own process is not listed`);
  return self.startTimeTicks;
}

/**
 * The pid file's lock, then the socket's, each beside its file: two configurations that share
 * either one are the same daemon, and the second is refused before it touches anything.
 */
export function takeInstanceLocks(config: Config): InstanceLock[] {
  const locks: InstanceLock[] = [];
  try {
    for (const guarded of new Set([config.pid_file, config.socket_path])) {
      // Private first: the lock file, and later the previous record, are trusted only from there.
      ensurePrivateDir(dirname(guarded));
      locks.push(acquireInstanceLock(lockPathFor(guarded)));
    }
  } catch (err) {
    for (const lock of locks) lock.release();
    throw err;
  }
  return locks;
}

/**
 * After a daemon was killed with SIGKILL its worker tree may live on. Its instance id is in the
 * record beside the PID file; stop every process carrying that marker before spawning: never two
 * workers. The marker finds the tree; the recorded daemon (pid and start time) only ever holds the
 * stop back. The record itself is trusted only as our own file in our private directory (pid-file.ts).
 */
export async function stopOrphanTree(config: Config, table: ProcTable, uid: number, protectedPids: () => ReadonlySet<number>, logger: Logger): Promise<void> {
  const previous = readInstanceRecord(config.pid_file, (reason) => logger.emit({ kind: 'instance-record-ignored', reason }));
  if (previous === null) return;
  // Holding the pid file's lock, the record's daemon should be dead. Should: one that lost its lock
  // (someone removed the lock file) or predates it is alive, and its tree is its live worker, no
  // orphan (issue #14, items 3 and 7). A start never stops that; the record is left where it is.
  if (isAlive(table, previous, uid, protectedPids())) {
    logger.emit({ kind: 'previous-daemon-alive', instanceId: previous.instance_id, previousPid: previous.pid });
    return;
  }
  const identity = { root: null, pgid: null, instanceId: previous.instance_id, uid, protectedPids: protectedPids() };
  const members = findTree(table, identity);
  if (members.length > 0) {
    logger.emit({ kind: 'orphan-tree-found', instanceId: previous.instance_id, previousPid: previous.pid, pids: members.map((p) => p.pid) });
    await stopTree({ table, identity, graceMs: config.worker.stop_timeout_ms });
  }
  removeInstanceRecord(config.pid_file, previous.instance_id);
}

/**
 * Whether the record's daemon still runs: a live process of ours with the recorded start time (a
 * record from before issue #14 has none: then any live process of ours at that pid). A pid of
 * this daemon or of an ancestor was reused: that one is dead.
 */
function isAlive(table: ProcTable, record: InstanceRecord, uid: number, protectedPids: ReadonlySet<number>): boolean {
  if (protectedPids.has(record.pid) || !isLiveProcessOf(table, record.pid, uid)) return false;
  return record.start_ticks === null || table.read(record.pid)?.startTimeTicks === record.start_ticks;
}
