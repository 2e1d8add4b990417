// Pidfds for the members of a worker tree, keyed by pid and start time, held for one stop or one
// kill (issue #18): each signal goes through the fd, so a pid handed out again after the member
// exited is never hit ('gone' instead). Without pidfds (no native helper, kernel before 5.3) each
// signal is today's checked kill() (see signalPath for the line the daemon logs about it).
//
// A member's fd is opened at its first signal, not when a scan first sees it. That is sound because
// the start time is read after the open: the fd names whoever held the pid at pidfd_open, and a
// matching start time (not a zombie) then proves that this is the process the look found in the
// tree; from the open on, the fd follows that process and no later holder of its pid. Opening at
// sight instead would hold an fd for every member, most of which are reached through kill(-pgid).
import { closeSync } from 'node:fs';
import type { NativeHelper } from './native.js';
import type { ProcessInfo, ProcTable } from './proc-table.js';
import {
  checkedKill, openCheckedPidfd, pidfdHelper, signalThroughPidfd,
  type MemberSignaller, type SignalName, type SignalResult,
} from './signal.js';

export class ProcessHandles implements MemberSignaller {
  private readonly fds = new Map<string, number>();
  /**
   * Members whose fd answered 'gone': never opened again by pid. A pid handed out again within the
   * same clock tick shows the same start time, so a second open would name the new holder.
   */
  private readonly gone = new Set<string>();

  /** `helper` null: no pidfds, every signal is a checked kill(). */
  constructor(private readonly table: ProcTable, private readonly helper: NativeHelper | null = pidfdHelper()) {}

  get viaPidfd(): boolean {
    return this.helper !== null;
  }

  /** Fds held now. */
  get openCount(): number {
    return this.fds.size;
  }

  /**
   * Opens proc's pidfd and checks its start time after the open (once; later calls reuse the fd).
   * 'gone': its pid no longer names it. 'by-pid': no fd to be had (no pidfds here, or EMFILE).
   */
  open(proc: ProcessInfo): 'open' | 'gone' | 'by-pid' {
    if (this.helper === null) return 'by-pid';
    const key = keyOf(proc);
    if (this.fds.has(key)) return 'open';
    if (this.gone.has(key)) return 'gone';
    const fd = openCheckedPidfd(this.helper, this.table, proc);
    if (fd === 'gone') return 'gone';
    if (fd === 'no-fd') return 'by-pid';
    this.fds.set(key, fd);
    return 'open';
  }

  signal(proc: ProcessInfo, signal: SignalName): SignalResult {
    const opened = this.open(proc);
    if (opened === 'gone') return 'gone';
    if (opened === 'by-pid') return checkedKill(this.table, proc, signal);
    const result = signalThroughPidfd(this.helper!, this.table, this.fds.get(keyOf(proc))!, proc, signal);
    // Exited (or a zombie): nothing more will be sent to it.
    if (result === 'gone') {
      this.close(proc);
      this.gone.add(keyOf(proc));
    }
    return result;
  }

  /** Closes the fds of processes not among `members` (a look's members: the others left the tree). */
  retain(members: Iterable<ProcessInfo>): void {
    if (this.fds.size === 0) return;
    const keep = new Set<string>();
    for (const p of members) keep.add(keyOf(p));
    for (const [key, fd] of this.fds) {
      if (keep.has(key)) continue;
      closeSync(fd);
      this.fds.delete(key);
    }
  }

  close(proc: ProcessInfo): void {
    const key = keyOf(proc);
    const fd = this.fds.get(key);
    if (fd === undefined) return;
    closeSync(fd);
    this.fds.delete(key);
  }

  closeAll(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.gone.clear();
  }
}

function keyOf(p: ProcessInfo): string {
  return `${p.pid}:${p.startTimeTicks}`;
}
