// Finds the worker's whole process tree, escapees included, from a /proc scan. Never by name:
// a name says nothing about whose process it is. Never by a number alone either: the kernel hands
// pids out again, so the worker is known by its pid and start time together, and its group and
// session id only while that number cannot have been handed out again (see refineIdentity).
import type { ProcessInfo, ProcTable } from './proc-table.js';

/** The environment variable every worker process inherits; its value is the instance id. */
export const INSTANCE_ENV = 'AUTOPILOTD_INSTANCE';

/** One process over its life: once its pid is reused, the new process has another start time. */
export interface ProcessKey {
  pid: number;
  startTimeTicks: number;
}

export interface TreeIdentity {
  /** The worker, or null when there is none. A process is the root only when pid and start time both agree. */
  root: ProcessKey | null;
  /**
   * The worker's process group, which is also its session: the worker is started as the leader of
   * both, so this is root.pid. null once that number may name someone else's group (refineIdentity).
   */
  pgid: number | null;
  instanceId: string;
  /** Only processes whose real uid is this one are ever returned. */
  uid: number;
  /** The daemon itself and its ancestors: never returned, and never followed to their children. */
  protectedPids: ReadonlySet<number>;
}

export function sameProcess(key: ProcessKey | null, p: ProcessKey): boolean {
  return key !== null && key.pid === p.pid && key.startTimeTicks === p.startTimeTicks;
}

/** What is learnt about one process once in its life: a (pid, startTimeTicks) pair. */
interface Facts {
  startTimeTicks: number;
  uid?: number | null;
  markerFor?: string;
  marked?: boolean;
}

// Per table, so a test's fake /proc never shares facts with the real one.
const factsByTable = new WeakMap<ProcTable, Map<number, Facts>>();

export interface TraceOptions {
  /**
   * Whether `procs` is a whole scan of /proc. When not (e.g. the last members and the pids new
   * since), ancestry is followed through `procs` only, and the cached facts of processes not in
   * `procs` are kept, as they were not looked at, not seen gone.
   */
  wholeScan: boolean;
  /**
   * The members found by the previous look at this same tree (with the identity that look
   * returned), or null at a first look. `procs` must then hold every one of them still alive.
   */
  previous?: readonly ProcessInfo[] | null;
  /**
   * Read the environment of every process again unless it was already seen carrying the marker:
   * for the looks a stop decides on (the first, and the one that finds the tree empty).
   */
  fresh?: boolean;
}

export interface TracedTree {
  /** What findTree returns. */
  members: ProcessInfo[];
  /**
   * Processes of the tree owned by another uid (or whose owner could not be read): never members,
   * but descendants are found through them, so whoever follows the tree must keep following them.
   */
  foreign: ProcessInfo[];
  /**
   * Processes of this uid outside the tree whose environment said nothing (empty, e.g. inside
   * execve, or unreadable): they may still turn out marked, so they are read again at each look.
   */
  undecided: ProcessInfo[];
  /** The identity as this look leaves it (refineIdentity): pass it to the next look at this tree. */
  identity: TreeIdentity;
}

/**
 * Every live process of the worker's tree, and owned by identity.uid: the root (same pid and start
 * time), the processes in the worker's group or session while that id is trusted (refineIdentity),
 * the descendants of those by parent links, and every process carrying INSTANCE_ENV=instanceId in
 * its environment (setsid'd and double-forked escapees reparented to init) with its descendants.
 * Pass `procs` to reuse a scan.
 */
export function findTree(table: ProcTable, identity: TreeIdentity, procs: ProcessInfo[] = table.scan(), opts: { fresh?: boolean } = {}): ProcessInfo[] {
  return traceTree(table, identity, procs, { wholeScan: true, fresh: opts.fresh === true }).members;
}

/** findTree's rules, for a caller that follows the tree over successive looks (tree stop, TreeTracker). */
export function traceTree(table: ProcTable, identity: TreeIdentity, procs: ProcessInfo[], opts: TraceOptions): TracedTree {
  const facts = opts.wholeScan ? factsFor(table, procs) : cachedFacts(table);
  const refined = refineIdentity(identity, procs, opts.previous ?? null);
  const { root, pgid, protectedPids } = refined;
  const fresh = opts.fresh === true;

  const live = new Map<number, ProcessInfo>();
  const children = new Map<number, ProcessInfo[]>();
  for (const p of procs) {
    // A kernel thread has no environment and descends from kthreadd: it can never be ours.
    if (p.state === 'Z' || p.state === 'X' || p.kernelThread || protectedPids.has(p.pid)) continue;
    live.set(p.pid, p);
    const siblings = children.get(p.ppid);
    if (siblings === undefined) children.set(p.ppid, [p]);
    else siblings.push(p);
  }

  // Parent links are followed only from members: a live member holds its pid, so the processes
  // naming it as their parent are its children.
  const inTree = new Set<number>();
  const addWithDescendants = (seed: ProcessInfo): void => {
    const stack = [seed];
    for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
      if (inTree.has(p.pid)) continue;
      inTree.add(p.pid);
      const kids = children.get(p.pid);
      if (kids !== undefined) stack.push(...kids);
    }
  };

  for (const p of live.values()) {
    if (sameProcess(root, p) || (pgid !== null && (p.pgid === pgid || p.sid === pgid))) addWithDescendants(p);
  }
  const unsure: ProcessInfo[] = [];
  for (const p of live.values()) {
    if (inTree.has(p.pid)) continue;
    const verdict = markerOf(table, facts, p, refined, fresh);
    if (verdict === 'marked') addWithDescendants(p);
    else if (verdict === 'undecided') unsure.push(p);
  }

  const members: ProcessInfo[] = [];
  const foreign: ProcessInfo[] = [];
  for (const pid of inTree) {
    const p = live.get(pid);
    if (p === undefined) continue;
    if (uidOf(table, facts, p) === refined.uid) members.push(p);
    else foreign.push(p);
  }
  // A descendant of a marked process found later in the loop above is no longer undecided.
  const undecided = unsure.filter((p) => !inTree.has(p.pid));
  return { members, foreign, undecided, identity: refined };
}

/**
 * What of `identity` still names the tree, given a scan. The kernel never hands out a number that
 * any process (zombies included, until reaped) still holds as its pid, group or session id.
 * - The root is dropped once no process of the scan is it (same pid and start time): gone for good.
 * - The group and session id (the root's pid) is trusted while the root is alive, since it holds
 *   that number. Once the root is gone, a process holding that pid is another process: the number
 *   was reused, and the group is dropped for good. Without the root, the number is known to have
 *   stayed the tree's from the previous look only if a process now in that group or session was a
 *   member then (same pid and start time) and so held it all along; if none is, the group may have
 *   emptied in between, and its id been reused: dropped too.
 * At a first look (no `previous`) without the root only the reuse test applies: the caller passes
 * the group only while the worker is alive or just reaped (WorkerSupervisor.treeIdentity).
 */
export function refineIdentity(identity: TreeIdentity, procs: readonly ProcessInfo[], previous: readonly ProcessInfo[] | null): TreeIdentity {
  let { root, pgid } = identity;
  const rootAlive = root !== null && procs.some((p) => sameProcess(root, p));
  if (!rootAlive) root = null;
  if (pgid !== null && !rootAlive) {
    const group = pgid;
    const reused = procs.some((p) => p.pid === group);
    let carried = true;
    if (previous !== null) {
      const known = new Set(previous.map(keyOf));
      carried = procs.some((p) => (p.pgid === group || p.sid === group) && known.has(keyOf(p)));
    }
    if (reused || !carried) pgid = null;
  }
  return root === identity.root && pgid === identity.pgid ? identity : { ...identity, root, pgid };
}

/** The given pid and its ancestors up to init (pid 1, or the top of a pid namespace). */
export function protectedPidsOf(table: ProcTable, selfPid: number): Set<number> {
  const pids = new Set<number>([selfPid]);
  let info = table.read(selfPid);
  while (info !== null && info.ppid > 0 && !pids.has(info.ppid)) {
    pids.add(info.ppid);
    info = table.read(info.ppid);
  }
  return pids;
}

function keyOf(p: ProcessKey): string {
  return `${p.pid}:${p.startTimeTicks}`;
}

/** The cached facts of this table, pruned of processes that are no longer in `procs`. */
function factsFor(table: ProcTable, procs: ProcessInfo[]): Map<number, Facts> {
  const facts = cachedFacts(table);
  const current = new Map<number, number>();
  for (const p of procs) current.set(p.pid, p.startTimeTicks);
  for (const [pid, f] of facts) {
    if (current.get(pid) !== f.startTimeTicks) facts.delete(pid);
  }
  return facts;
}

function cachedFacts(table: ProcTable): Map<number, Facts> {
  let facts = factsByTable.get(table);
  if (facts === undefined) {
    facts = new Map();
    factsByTable.set(table, facts);
  }
  return facts;
}

function factsOf(facts: Map<number, Facts>, p: ProcessInfo): Facts {
  let f = facts.get(p.pid);
  if (f === undefined || f.startTimeTicks !== p.startTimeTicks) {
    f = { startTimeTicks: p.startTimeTicks };
    facts.set(p.pid, f);
  }
  return f;
}

// A process's environ is the one it was exec'd with, and exec keeps the start time, so a verdict
// is kept for the process's life only where no exec can change it:
// - marked: a process that ever carried our marker is ours, whatever it exec's next;
// - unmarked, from an environment read whole: it changes only by an exec, and a worker process
//   that exec's with a scrubbed environment is still caught by group, session or ancestry (only an
//   escapee that did both is missed); `fresh` reads it again all the same;
// - never from an empty or unreadable environ of our uid: that is what a process shows while
//   inside execve (EnvMarker), so it is read again at every look. Another uid's process is never a
//   member, so its verdict is kept whatever it was.
function markerOf(table: ProcTable, facts: Map<number, Facts>, p: ProcessInfo, identity: TreeIdentity, fresh: boolean): 'marked' | 'unmarked' | 'undecided' {
  const f = factsOf(facts, p);
  if (f.markerFor === identity.instanceId && f.marked !== undefined && (f.marked || !fresh)) return f.marked ? 'marked' : 'unmarked';
  const read = table.envMarker(p.pid, INSTANCE_ENV, identity.instanceId);
  if (read === 'empty' || read === null) {
    if (uidOf(table, facts, p) === identity.uid) {
      delete f.marked;
      return 'undecided';
    }
  }
  f.markerFor = identity.instanceId;
  f.marked = read === 'present';
  return f.marked ? 'marked' : 'unmarked';
}

function uidOf(table: ProcTable, facts: Map<number, Facts>, p: ProcessInfo): number | null {
  const f = factsOf(facts, p);
  if (f.uid === undefined) f.uid = table.uidOf(p.pid);
  return f.uid;
}
