// What `start` does when the daemon it launched never says whether it started (issue #15, item 4):
// it stops that daemon, by the pid it spawned, so that no half-started daemon is left behind that
// the user did not know of, holding the locks and, maybe, a worker.
import type { ChildProcess } from 'node:child_process';
import type { Config } from '../config/types.js';
import { readInstanceRecord } from '../os/pid-file.js';
import { ProcTable } from '../os/proc-table.js';
import { findTree, protectedPidsOf } from '../os/process-tree.js';
import { sendSignal } from '../os/signal.js';
import { stopTree } from '../os/tree-stop.js';

/**
 * Internal, for tests only: the wait in milliseconds, instead of the default. Not an AUTOPILOTD_
 * variable, so that the configuration's environment layer neither reads nor refuses it.
 */
export const START_TIMEOUT_ENV = '_AUTOPILOTD_START_TIMEOUT_MS';

/**
 * How long `start` waits for the daemon's report. Its start-up may stop an orphaned worker tree
 * first (TERM, the worker's grace, KILL), so the bound is that grace plus a margin for a loaded
 * machine.
 */
export function startTimeoutMs(config: Config, env: Record<string, string | undefined>): number {
  const override = env[START_TIMEOUT_ENV];
  if (override !== undefined && /^[1-9][0-9]*$/.test(override)) return Number(override);
  return config.worker.stop_timeout_ms + 30_000;
}

/**
 * The daemon stops its worker tree in order on SIGTERM, which may take the worker's grace; past
 * that (and the tree stop's SIGKILL rounds) it gets SIGKILL.
 */
function termGraceMs(config: Config): number {
  return config.worker.stop_timeout_ms + 5_000;
}

/**
 * Stops the daemon `child` (not yet reaped: its pid is still its own) and, if it had to be killed,
 * the worker tree it may have spawned, found by the instance marker of the daemon's record.
 * Returns how it went, in words, for the message.
 */
export async function stopUnreportedDaemon(child: ChildProcess, config: Config): Promise<string> {
  const pid = child.pid!;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  // SIGCONT as well: a stopped daemon (SIGSTOP, a debugger detached) would hold SIGTERM pending
  // for ever. systemd does the same.
  sendSignal(pid, 'SIGTERM');
  sendSignal(pid, 'SIGCONT');
  if (await within(exited, termGraceMs(config))) return `stopped it (pid ${pid})`;
  // Read before the kill: the record names the instance marker its worker tree carries.
  const record = readInstanceRecord(config.pid_file);
  sendSignal(pid, 'SIGKILL');
  await exited;
  let how = `killed it (pid ${pid}) with SIGKILL after SIGTERM for ${termGraceMs(config) / 1000} s`;
  if (record !== null && record.pid === pid) {
    const table = new ProcTable();
    const identity = { root: null, pgid: null, instanceId: record.instance_id, uid: process.getuid!(), protectedPids: protectedPidsOf(table, process.pid) };
    if (findTree(table, identity).length > 0) {
      const report = await stopTree({ table, identity, graceMs: config.worker.stop_timeout_ms });
      how += report.survivors.length === 0 ? ', and stopped its worker tree' : `; its worker tree survives: pids ${report.survivors.join(', ')}`;
    }
  }
  return how;
}

function within(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
