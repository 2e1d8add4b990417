// Keeps the worker's tree current between full /proc scans, for samplers that poll often (the
// memory guard, as often as every 100 ms). A full scan reads the stat of every process: ~12 ms
// with 1000 processes, nearly all of it in the kernel. An incremental sample lists /proc (one
// directory read) and reads the stat of the tree's members and of the pids new since the last
// sample only.
//
// Why skipping the other known pids is sound: a process outside the tree cannot join it. It cannot
// enter the worker's session (setsid only makes a new one), hence nor its group (setpgid stays
// within a session); its parent only changes to a reaper it already descended from; and its
// environment changes only by its own exec. New members are therefore new processes: new pids.
// The gap is pid reuse: a pid known as an outsider that exits and is handed to a new member
// between two samples looks known. The kernel hands out pids cyclically, and its cursor
// (/proc/sys/kernel/ns_last_pid) says which pids were handed out since the last sample: known
// pids in that range are read again. Where the cursor cannot be read, or it came round more than
// once between two samples, the periodic full scan bounds such a miss.
//
// Given the daemon's descendant walker (the daemon is a child subreaper, issue #18), every sample
// is a walk of the daemon's descendants instead (descendant-walk.ts): O(tree), no listing of /proc
// and no full scan, since no process can join the tree from outside the daemon's descendants.
import type { DescendantWalker } from './descendant-walk.js';
import type { PidCursor, ProcessInfo, ProcTable } from './proc-table.js';
import { sameProcess, traceTree, type TracedTree, type TreeIdentity } from './process-tree.js';
import { lookAtLeaf } from './leaf-tree.js';

export interface TreeTrackerOptions {
  /** Longest time between two full scans; an incremental sample is taken in between. Default 5000. */
  fullScanIntervalMs?: number;
  /** The daemon's descendant walker: every sample walks it (full is then false). Absent or null: scans. */
  walker?: DescendantWalker | null;
  /**
   * The current tree's cgroup leaf when the cgroup backend holds it (null: the /proc rules). A
   * sample then reads the leaf's members only: exact, no scan, and `full` is false.
   */
  cgroupLeaf?: () => string | null;
}

export interface TreeSample {
  /** Every live process of the tree, as findTree defines it, with stat read during this sample. */
  members: ProcessInfo[];
  /** Whether this sample was a full scan of /proc. */
  full: boolean;
}

const DEFAULT_FULL_SCAN_INTERVAL_MS = 5000;

export class TreeTracker {
  private readonly fullScanIntervalMs: number;
  /** The identity as last passed in, to tell a new tree from the same one. */
  private identity: TreeIdentity | null = null;
  private lastFullScanAtMs = 0;
  /** Every pid of the last listing of /proc, readable or not (another user's, under hidepid=1). */
  private known = new Set<number>();
  /** The last sample's tree, with the identity as that sample refined it. */
  private tree: TracedTree | null = null;
  /** The kernel's pid cursor when the last listing was taken. */
  private cursor: PidCursor | null = null;
  private readonly cgroupLeaf: () => string | null;

  private readonly walker: DescendantWalker | null;

  constructor(private readonly table: ProcTable, opts: TreeTrackerOptions = {}) {
    this.cgroupLeaf = opts.cgroupLeaf ?? (() => null);
    const interval = opts.fullScanIntervalMs ?? DEFAULT_FULL_SCAN_INTERVAL_MS;
    if (!(interval >= 0)) throw new RangeError(`fullScanIntervalMs must be >= 0, got ${interval}`);
    this.fullScanIntervalMs = interval;
    this.walker = opts.walker ?? null;
  }

  /** Whether samples walk the daemon's descendants (rather than scan /proc). */
  get walks(): boolean {
    return this.walker !== null;
  }

  /**
   * The tree now. A full scan on the first sample, when the identity changed (a new worker
   * generation, or no worker any more), when fullScanIntervalMs has passed since the last full
   * scan, or when nowMs went backwards; an incremental sample otherwise. nowMs: any monotonic clock.
   */
  sample(identity: TreeIdentity, nowMs: number): TreeSample {
    const leaf = this.cgroupLeaf();
    if (leaf !== null) return { members: lookAtLeaf(this.table, leaf, identity).members, full: false };
    const last = this.identity;
    const same = last !== null && sameIdentity(last, identity);
    const full = !same || nowMs < this.lastFullScanAtMs || nowMs - this.lastFullScanAtMs >= this.fullScanIntervalMs;
    // What an earlier sample learnt holds as long as the tree is the same one: a dropped root or
    // group stays dropped, and the last members vouch for the group id (refineIdentity).
    const base = same && this.tree !== null ? this.tree.identity : identity;
    const previous = last !== null && this.tree !== null && sameTree(last, identity) ? this.tree.members : null;
    if (this.walker !== null) {
      this.tree = this.walker.workerTree(base, previous);
      this.identity = identity;
      return { members: [...this.tree.members], full: false };
    }
    // The cursor first: a pid handed out after it is read falls in the next sample's range.
    const cursor = this.table.pidCursor();
    const pids = this.table.listPids();
    const procs = full ? this.readAll(pids) : this.candidates(pids, handedOutSince(this.cursor, cursor));
    this.tree = traceTree(this.table, base, procs, { wholeScan: full, previous });
    this.cursor = cursor;
    this.known = new Set(pids);
    this.identity = identity;
    if (full) this.lastFullScanAtMs = nowMs;
    return { members: [...this.tree.members], full };
  }

  // The same reads as table.scan(), over the listing kept as `known`: taking `known` from the
  // readable processes only would re-try every unreadable pid at each sample.
  private readAll(pids: number[]): ProcessInfo[] {
    const procs: ProcessInfo[] = [];
    for (const pid of pids) {
      const p = this.table.read(pid);
      if (p !== null) procs.push(p);
    }
    return procs;
  }

  private candidates(pids: number[], reissued: (pid: number) => boolean): ProcessInfo[] {
    const candidates: ProcessInfo[] = [];
    const followed = new Set<number>();
    // Members are re-read for fresh RSS and state, and to drop the gone (null) and zombies (which
    // findTree skips); foreign ones (another uid) because descendants are found through them;
    // undecided ones because their environment may say more now (one inside execve has none).
    // A pid now held by another process (a new start time) makes that process a candidate like
    // any new one: it is judged by the same rules, not kept as a member.
    const last = this.tree;
    for (const m of last === null ? [] : [...last.members, ...last.foreign, ...last.undecided]) {
      followed.add(m.pid);
      const p = this.table.read(m.pid);
      if (p !== null) candidates.push(p);
    }
    for (const pid of pids) {
      if ((this.known.has(pid) && !reissued(pid)) || followed.has(pid)) continue;
      const p = this.table.read(pid);
      if (p !== null) candidates.push(p);
    }
    // Members are re-judged too, so the result is what findTree would return (e.g. an escapee
    // that neither carries the marker nor has a member parent any more is dropped, as findTree does).
    return candidates;
  }
}

function sameIdentity(a: TreeIdentity, b: TreeIdentity): boolean {
  if (!sameTree(a, b)) return false;
  if (a.root === null || b.root === null ? a.root !== b.root : !sameProcess(a.root, b.root)) return false;
  if (a.protectedPids === b.protectedPids) return true;
  if (a.protectedPids.size !== b.protectedPids.size) return false;
  for (const pid of a.protectedPids) {
    if (!b.protectedPids.has(pid)) return false;
  }
  return true;
}

/** The same worker group of the same daemon: the members found with one vouch for the other's group id. */
function sameTree(a: TreeIdentity, b: TreeIdentity): boolean {
  return a.pgid === b.pgid && a.instanceId === b.instanceId && a.uid === b.uid;
}

/** Whether a pid lies in the cyclic range (before, now] the kernel handed out between two cursors. */
function handedOutSince(before: PidCursor | null, now: PidCursor | null): (pid: number) => boolean {
  if (before === null || now === null || before.lastPid === now.lastPid) return () => false;
  const from = before.lastPid;
  const to = now.lastPid;
  return from < to ? (pid) => pid > from && pid <= to : (pid) => pid > from || pid <= to;
}
