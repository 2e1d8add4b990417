// Finds the worker's whole process tree, escapees included, from a /proc scan. Never by name:
// a name says nothing about whose process it is.
import type { ProcessInfo, ProcTable } from './proc-table.js';

/** The environment variable every worker process inherits; its value is the instance id. */
export const INSTANCE_ENV = 'AUTOPILOTD_INSTANCE';

export interface TreeIdentity {
  /**
   * The worker's pid, or null when there is none. Only pass it while the worker is not yet
   * reaped: until then the kernel cannot give its pid (nor its group's id) to another process.
   */
  rootPid: number | null;
  /** The worker's process group. The worker is started as session and group leader, so this is also its session id. */
  pgid: number | null;
  instanceId: string;
  /** Only processes whose real uid is this one are ever returned. */
  uid: number;
  /** The daemon itself and its ancestors: never returned, and never followed to their children. */
  protectedPids: ReadonlySet<number>;
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

/**
 * Every live process of the worker's tree: in the worker's group or session, descending from
 * rootPid or from another member, or carrying INSTANCE_ENV=instanceId in its environment (setsid'd
 * and double-forked escapees reparented to init) — and owned by identity.uid.
 * Each environ and status is read once per process life; pass `procs` to reuse a scan.
 */
export function findTree(table: ProcTable, identity: TreeIdentity, procs: ProcessInfo[] = table.scan()): ProcessInfo[] {
  return traceTree(table, identity, procs, { wholeScan: true }).members;
}

export interface TracedTree {
  /** What findTree returns. */
  members: ProcessInfo[];
  /**
   * Processes of the tree owned by another uid (or whose owner could not be read): never members,
   * but descendants are found through them, so whoever follows the tree must keep following them.
   */
  foreign: ProcessInfo[];
}

/**
 * findTree's rules, for a caller that follows the tree over time (TreeTracker). With wholeScan
 * false, `procs` may be some processes only (e.g. the last members and the pids new since):
 * ancestry is then followed through them only, and the cached facts of processes not in `procs`
 * are kept, as they were not looked at, not seen gone.
 */
export function traceTree(table: ProcTable, identity: TreeIdentity, procs: ProcessInfo[], opts: { wholeScan: boolean }): TracedTree {
  const facts = opts.wholeScan ? factsFor(table, procs) : cachedFacts(table);
  const { rootPid, pgid, protectedPids } = identity;

  const live = new Map<number, ProcessInfo>();
  const children = new Map<number, ProcessInfo[]>();
  for (const p of procs) {
    if (p.state === 'Z' || p.state === 'X' || protectedPids.has(p.pid)) continue;
    live.set(p.pid, p);
    const siblings = children.get(p.ppid);
    if (siblings === undefined) children.set(p.ppid, [p]);
    else siblings.push(p);
  }

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
    if (p.pid === rootPid || (pgid !== null && (p.pgid === pgid || p.sid === pgid))) addWithDescendants(p);
  }
  for (const p of live.values()) {
    if (!inTree.has(p.pid) && isMarked(table, facts, p, identity.instanceId)) addWithDescendants(p);
  }

  const members: ProcessInfo[] = [];
  const foreign: ProcessInfo[] = [];
  for (const pid of inTree) {
    const p = live.get(pid);
    if (p === undefined) continue;
    if (uidOf(table, facts, p) === identity.uid) members.push(p);
    else foreign.push(p);
  }
  return { members, foreign };
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
