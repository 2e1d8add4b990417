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
  marked?: boolean | null;
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
}

export interface TracedTree {
  /** What findTree returns. */
  members: ProcessInfo[];
  /**
   * Processes of the tree owned by another uid (or whose owner could not be read): never members,
   * but descendants are found through them, so whoever follows the tree must keep following them.
   */
  foreign: ProcessInfo[];
  /** The identity as this look leaves it (refineIdentity): pass it to the next look at this tree. */
  identity: TreeIdentity;
}

/**
 * Every live process of the worker's tree, and owned by identity.uid: the root (same pid and start
 * time), the processes in the worker's group or session while that id is trusted (refineIdentity),
 * the descendants of those by parent links, and every process carrying INSTANCE_ENV=instanceId in
 * its environment (setsid'd and double-forked escapees reparented to init) with its descendants.
 * Each environ and status is read once per process life; pass `procs` to reuse a scan.
 */
export function findTree(table: ProcTable, identity: TreeIdentity, procs: ProcessInfo[] = table.scan()): ProcessInfo[] {
  return traceTree(table, identity, procs, { wholeScan: true }).members;
}

/** findTree's rules, for a caller that follows the tree over successive looks (tree stop, TreeTracker). */
export function traceTree(table: ProcTable, identity: TreeIdentity, procs: ProcessInfo[], opts: TraceOptions): TracedTree {
  const facts = opts.wholeScan ? factsFor(table, procs) : cachedFacts(table);
  const refined = refineIdentity(identity, procs, opts.previous ?? null);
  const { root, pgid, protectedPids } = refined;

  const live = new Map<number, ProcessInfo>();
  const children = new Map<number, ProcessInfo[]>();
  for (const p of procs) {
    if (p.state === 'Z' || p.state === 'X' || protectedPids.has(p.pid)) continue;
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
  for (const p of live.values()) {
    if (!inTree.has(p.pid) && isMarked(table, facts, p, refined.instanceId)) addWithDescendants(p);
  }

  const members: ProcessInfo[] = [];
  const foreign: ProcessInfo[] = [];
  for (const pid of inTree) {
    const p = live.get(pid);
    if (p === undefined) continue;
    if (uidOf(table, facts, p) === refined.uid) members.push(p);
    else foreign.push(p);
  }
  return { members, foreign, identity: refined };
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

// A process's environ is the one it was exec'd with, so the verdict holds until its next exec;
// a worker process that exec's with a scrubbed environment is still caught by group, session or
// ancestry, and only an escapee that did both is missed.
function isMarked(table: ProcTable, facts: Map<number, Facts>, p: ProcessInfo, instanceId: string): boolean {
  const f = factsOf(facts, p);
  if (f.markerFor !== instanceId) {
    f.markerFor = instanceId;
    f.marked = table.hasEnvMarker(p.pid, INSTANCE_ENV, instanceId);
  }
  return f.marked === true;
}

function uidOf(table: ProcTable, facts: Map<number, Facts>, p: ProcessInfo): number | null {
  const f = factsOf(facts, p);
  if (f.uid === undefined) f.uid = table.uidOf(p.pid);
  return f.uid;
}
