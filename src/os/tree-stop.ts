// Stops the worker's whole process tree: SIGTERM, a grace period, then SIGKILL until nothing of
// it is left. Escapees outside the worker's group get each signal individually.
//
// Every SIGTERM is followed by SIGCONT to the same processes, as systemd does: a process stopped
// by SIGSTOP (or SIGTSTP, SIGTTIN) does not run its TERM handler until it is continued, so it would
// otherwise wait out the whole grace and die of SIGKILL without having cleaned up (#15).
//
// Where the native helper is loaded the daemon is a child subreaper (issue #18): every orphan of
// the tree is re-parented to it, so each look walks the daemon's descendants (descendant-walk.ts,
// O(tree), which also reaps the zombies it adopted, one pid at a time: never waitpid(-1), which
// would steal libuv's exit statuses). A walk during which a process of the tree vanished may have
// missed its children as they moved: the tree is never called gone from such a look. Without the
// helper (or for a tree that is not the daemon's worker) each look is a /proc scan by
// process-tree.ts's rules instead. A zombie is counted as gone either way.
import { monotonicMs } from './monotonic-clock.js';
import { ProcessHandles } from './process-handles.js';
import type { DescendantWalker } from './descendant-walk.js';
import type { ProcessInfo, ProcTable } from './proc-table.js';
import { traceTree, type TracedTree, type TreeIdentity } from './process-tree.js';
import { signalGroup, signalIfSame, type SignalName } from './signal.js';
import { killLeaf, lookAtLeaf } from './leaf-tree.js';
import { cgroupMemoryBytes } from './cgroup-leaf.js';

export type TreeStopEvent =
  | { kind: 'term_sent'; pids: number[]; pgid: number | null }
  | { kind: 'kill_sent'; pids: number[]; afterMs: number }
  /** The tree's RSS + swap passed `killAboveTreeBytes` during the grace: the grace ends, SIGKILL follows. */
  | { kind: 'tree_over_limit'; treeRssBytes: number; treeSwapBytes: number; limitBytes: number; afterMs: number }
  /** Members that appeared after the first SIGKILL round (forked while dying) and were killed too. */
  | { kind: 'survivors_killed'; pids: number[] }
  | { kind: 'tree_gone'; durationMs: number }
  /** SIGKILL rounds hit their ceiling with these still alive (e.g. stuck in uninterruptible sleep). */
  | { kind: 'survivors_remain'; pids: number[] };

export interface TreeStopOptions {
  table: ProcTable;
  identity: TreeIdentity;
  graceMs: number;
  /** Called synchronously for each step; it must not throw. */
  onEvent?: (event: TreeStopEvent) => void;
  /** Aborting it ends the grace period at once (or skips it, if already aborted). */
  force?: AbortSignal;
  /**
   * The grace ends at the first look that finds the tree's RSS + swap (summed over its members: RSS
   * from the scan each look makes, swap read for the members only) above this: a tree that keeps
   * growing while it is asked to exit is not given the whole grace to grow in. The caller chooses
   * the figure; null or absent: no such limit.
   */
  killAboveTreeBytes?: number | null;
  /**
   * The daemon's descendant walker, for its worker's tree only (the walk finds that tree, not one
   * named by another marker): each look walks instead of scanning /proc. Absent or null: scans.
   */
  walker?: DescendantWalker | null;
  /**
   * The tree's cgroup leaf (cgroup backend): members are what the leaf holds, signals go to each
   * member (no group signal: the leaf is the tree), the tree is gone once the leaf holds no member,
   * and SIGKILL is cgroup.kill. Absent or null: the /proc rules (traceTree).
   */
  cgroup?: string | null;
}

export interface TreeStopReport {
  durationMs: number;
  termSent: number[];
  killSent: number[];
  /** Members still alive after the last SIGKILL round; empty when the tree is gone. */
  survivors: number[];
}

/**
 * While waiting for the tree to exit, it is rescanned after 4 ms, then at doubling intervals up to
 * every 50 ms: most processes die within a few milliseconds of a signal, and a fixed 50 ms first
 * wait was half of a crash-restart cycle (#15: 10 restarts a second, now about twice that). The
 * extra looks cost a scan each, a handful per stop.
 */
export const RESCAN_FIRST_MS = 4;
export const RESCAN_INTERVAL_MS = 50;

function rescanDelays(): () => number {
  let next = RESCAN_FIRST_MS;
  return () => {
    const ms = next;
    next = Math.min(RESCAN_INTERVAL_MS, next * 2);
    return ms;
  };
}
/**
 * A process of ours whose environment read as empty or unreadable (as inside an execve) is looked
 * at again at least this much later before the tree is called empty; and once no member is left,
 * the stop waits at most this long for that, so processes that keep exec'ing on a busy machine
 * cannot hold it up. An execve takes well under a millisecond, a few with a large environment;
 * this leaves room for a loaded machine.
 */
export const UNDECIDED_SETTLE_MS = 200;
/** SIGKILL is repeated (members may fork while dying) for at most this many rounds... */
export const KILL_MAX_ROUNDS = 20;
/** ...and at most this long. */
export const KILL_CEILING_MS = 2000;

export async function stopTree(opts: TreeStopOptions): Promise<TreeStopReport> {
  // Members signalled one by one are signalled through pidfds held for the stop (issue #18).
  const handles = new ProcessHandles(opts.table);
  try {
    return await stopTreeWith(opts, handles);
  } finally {
    handles.closeAll();
  }
}

async function stopTreeWith(opts: TreeStopOptions, handles: ProcessHandles): Promise<TreeStopReport> {
  const { table, graceMs, force } = opts;
  const emit = opts.onEvent ?? (() => {});
  const startMs = monotonicMs();
  const forced = (): boolean => force?.aborted === true;
  const elapsedMs = (): number => Math.round(monotonicMs() - startMs);
  const termSent = new Set<number>();
  const killSent = new Set<number>();
  const termed = new Set<string>();
  // Processes whose uid changed since findTree cached it: no longer the worker's, never signalled.
  const foreign = new Set<string>();
  // The identity is refined at each look, from the previous look's members: the worker's pid and
  // group id stop naming the tree once the kernel may have handed them to someone else (#14).
  let identity = opts.identity;
  let previous: ProcessInfo[] | null = null;
  const undecidedSinceMs = new Map<string, number>();
  let emptySinceMs: number | null = null;
  const walker = opts.walker ?? null;
  const leaf = opts.cgroup ?? null;
  const look = (fresh: boolean): Look => {
    if (leaf !== null) {
      const leafLook = lookLeaf(table, leaf, identity, foreign);
      handles.retain(leafLook.members);
      return leafLook;
    }
    let procs: ProcessInfo[];
    let traced: TracedTree;
    let conclusive = true;
    if (walker !== null) {
      const walked = walker.workerTree(identity, previous);
      ({ procs, conclusive } = walked);
      traced = walked;
    } else {
      procs = table.scan();
      traced = traceTree(table, identity, procs, { wholeScan: true, previous, fresh });
    }
    identity = traced.identity;
    previous = traced.members;
    handles.retain(traced.members);
    // A process whose environment said nothing may be inside execve: the tree is not called empty
    // until each such process has been looked at again at least UNDECIDED_SETTLE_MS later.
    const members = traced.members.filter((p) => !foreign.has(keyOf(p)));
    const nowMs = monotonicMs();
    let settleMs = 0;
    for (const p of traced.undecided) {
      const sinceMs = undecidedSinceMs.get(keyOf(p)) ?? nowMs;
      undecidedSinceMs.set(keyOf(p), sinceMs);
      settleMs = Math.max(settleMs, sinceMs + UNDECIDED_SETTLE_MS - nowMs);
    }
    if (members.length > 0) emptySinceMs = null;
    else {
      emptySinceMs ??= nowMs;
      settleMs = Math.min(settleMs, emptySinceMs + UNDECIDED_SETTLE_MS - nowMs);
    }
    return { procs, members, settleMs, conclusive };
  };
  // Members TERMed through kill(-pgid), with that pgid: one that left the group before the signal
  // (setsid right after the scan) was not reached, so it gets its own TERM once seen outside.
  const termedByGroup = new Map<string, number>();

  // The first look reads every environment afresh: a verdict cached by an earlier look (the memory
  // guard's) may be from a read during an execve.
  let now = look(true);
  if (!forced() && (now.members.length > 0 || !settled(now))) {
    if (now.members.length > 0) {
      const groupSafe = leaf === null && isGroupSafe(identity, now.members, now.procs);
      const pids: number[] = [];
      for (const p of send(table, handles, identity, now.members, groupSafe, 'SIGTERM', foreign)) {
        pids.push(p.pid);
        termSent.add(p.pid);
        termed.add(keyOf(p));
        if (groupSafe && p.pgid === identity.pgid) termedByGroup.set(keyOf(p), p.pgid);
      }
      emit({ kind: 'term_sent', pids, pgid: groupSafe ? identity.pgid : null });
    }

    const limitBytes = opts.killAboveTreeBytes ?? null;
    const overLimit = (members: ProcessInfo[]): boolean => {
      if (limitBytes === null) return false;
      const sampled = table.withSwap(members);
      const treeRssBytes = sampled.reduce((sum, p) => sum + p.rssBytes, 0);
      const treeSwapBytes = sampled.reduce((sum, p) => sum + p.swapBytes, 0);
      // The leaf's own figure (memory.current + memory.swap.current) when its memory controller is on.
      const treeBytes = (leaf === null ? null : cgroupMemoryBytes(leaf)) ?? treeRssBytes + treeSwapBytes;
      if (treeBytes <= limitBytes) return false;
      emit({ kind: 'tree_over_limit', treeRssBytes, treeSwapBytes, limitBytes, afterMs: elapsedMs() });
      return true;
    };
    const graceEndMs = startMs + graceMs;
    const nextDelay = rescanDelays();
    let graceOver = overLimit(now.members);
    while (!graceOver && !forced() && monotonicMs() < graceEndMs) {
      await sleep(Math.min(nextDelay(), graceEndMs - monotonicMs()), force);
      now = look(false);
      if (now.members.length === 0 && settled(now)) break;
      graceOver = overLimit(now.members);
      if (graceOver) break;
      // Forked after the SIGTERM, or found only now: they get their chance to exit cleanly too.
      const fresh = now.members.filter((p) => !termed.has(keyOf(p)) || leftGroup(termedByGroup, p));
      if (fresh.length === 0) continue;
      const sent = send(table, handles, identity, fresh, false, 'SIGTERM', foreign);
      for (const p of fresh) {
        termed.add(keyOf(p));
        termedByGroup.delete(keyOf(p));
      }
      if (sent.length > 0) {
        for (const p of sent) termSent.add(p.pid);
        emit({ kind: 'term_sent', pids: sent.map((p) => p.pid), pgid: null });
      }
    }
  }

  const killStartMs = monotonicMs();
  let survivors: number[] = [];
  let killedAny = false;
  const nextKillDelay = rescanDelays();
  for (let round = 0; ; round++) {
    // Fresh too: this look may be the one that calls the tree empty.
    now = look(true);
    const atCeiling = round >= KILL_MAX_ROUNDS || monotonicMs() - killStartMs >= KILL_CEILING_MS;
    if (now.members.length === 0) {
      if (settled(now)) break;
      if (atCeiling) {
        // Walks that stay inconclusive this long (processes of the tree dying all the time):
        // a scan, which needs no parent links, has the last word.
        if (!now.conclusive) survivors = lastResortScan(table, identity).map((p) => p.pid);
        break;
      }
      await sleep(now.conclusive ? now.settleMs : nextKillDelay());
      continue;
    }
    if (atCeiling) {
      survivors = now.members.map((p) => p.pid);
      break;
    }
    const groupSafe = leaf === null && isGroupSafe(identity, now.members, now.procs);
    const viaLeaf = leaf !== null && killLeaf(table, leaf, identity);
    const sent = (viaLeaf ? now.members : send(table, handles, identity, now.members, groupSafe, 'SIGKILL', foreign)).map((p) => p.pid);
    const fresh = sent.filter((pid) => !killSent.has(pid));
    for (const pid of sent) killSent.add(pid);
    if (!killedAny) emit({ kind: 'kill_sent', pids: sent, afterMs: elapsedMs() });
    else if (fresh.length > 0) emit({ kind: 'survivors_killed', pids: fresh });
    killedAny = true;
    await sleep(nextKillDelay());
  }

  const durationMs = elapsedMs();
  if (survivors.length === 0) emit({ kind: 'tree_gone', durationMs });
  else emit({ kind: 'survivors_remain', pids: survivors });
  return { durationMs, termSent: [...termSent], killSent: [...killSent], survivors };
}

interface Look {
  /** The whole scan the look was made from. */
  procs: ProcessInfo[];
  members: ProcessInfo[];
  /**
   * How long until every process whose marker this look could not decide has had its second look
   * (capped once the tree looks empty: UNDECIDED_SETTLE_MS); 0 or less when none is waited for.
   */
  settleMs: number;
  /** False when it came from a walk during which a process of the tree vanished (see the top of this file). */
  conclusive: boolean;
}

/** Whether a look that found no member may call the tree gone. */
function settled(look: Look): boolean {
  return look.settleMs <= 0 && look.conclusive;
}

/** The tree by a /proc scan, marker included, for when walks could not settle it. */
function lastResortScan(table: ProcTable, identity: TreeIdentity): ProcessInfo[] {
  return traceTree(table, identity, table.scan(), { wholeScan: true, fresh: true }).members;
}

/** A look at the cgroup leaf: exact, so nothing is undecided and no settling is waited for. */
function lookLeaf(table: ProcTable, leaf: string, identity: TreeIdentity, foreign: Set<string>): Look {
  const look = lookAtLeaf(table, leaf, identity);
  for (const p of look.foreign) foreign.add(keyOf(p));
  const members = look.members.filter((p) => !foreign.has(keyOf(p)));
  return { procs: members, members, settleMs: 0, conclusive: true };
}

function leftGroup(termedByGroup: Map<string, number>, p: ProcessInfo): boolean {
  const pgid = termedByGroup.get(keyOf(p));
  return pgid !== undefined && p.pgid !== pgid;
}

/**
 * Signals the members (the group at once when that is safe, the others one by one, each through
 * its pidfd or after checking its pid was not reused) and returns those the signal reached or covered. A SIGTERM is
 * followed at once by SIGCONT to the same group or process (see the top of this file).
 */
function send(
  table: ProcTable,
  handles: ProcessHandles,
  identity: TreeIdentity,
  members: ProcessInfo[],
  groupSafe: boolean,
  signal: SignalName,
  foreign: Set<string>,
): ProcessInfo[] {
  const reached: ProcessInfo[] = [];
  const pgid = identity.pgid;
  const groupSent = groupSafe && pgid !== null && signalGroup(pgid, signal) === 'sent';
  // The group may have emptied since the SIGTERM: 'gone' is a result, not an error.
  if (groupSent && signal === 'SIGTERM') signalGroup(pgid, 'SIGCONT');
  for (const p of members) {
    if (groupSent && p.pgid === pgid) {
      reached.push(p);
      continue;
    }
    if (identity.protectedPids.has(p.pid)) throw new Error(`refusing to signal protected pid ${p.pid}: findTree returned it`);
    // findTree caches each uid for the process's life; re-read it, as a uid can change (setuid).
    const uid = table.uidOf(p.pid);
    if (uid === null) continue;
    if (uid !== identity.uid) {
      foreign.add(keyOf(p));
      continue;
    }
    if (signalIfSame(table, p, signal, handles) !== 'sent') continue;
    reached.push(p);
    // A member that died of the SIGTERM may have been reaped and its pid reused: the pidfd (or the
    // check) keeps the SIGCONT from reaching the new holder.
    if (signal === 'SIGTERM') signalIfSame(table, p, 'SIGCONT', handles);
  }
  return reached;
}

/**
 * kill(-pgid) reaches every process in the group, including ones findTree left out (protected,
 * another uid): use it only when the whole live group, as scanned, is tree members.
 */
function isGroupSafe(identity: TreeIdentity, members: ProcessInfo[], procs: ProcessInfo[]): boolean {
  const pgid = identity.pgid;
  if (pgid === null || identity.protectedPids.has(pgid)) return false;
  const memberPids = new Set(members.map((p) => p.pid));
  let any = false;
  for (const p of procs) {
    if (p.pgid !== pgid || p.state === 'Z' || p.state === 'X') continue;
    if (!memberPids.has(p.pid)) return false;
    any = true;
  }
  return any;
}

function keyOf(p: ProcessInfo): string {
  return `${p.pid}:${p.startTimeTicks}`;
}

function sleep(ms: number, abort?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (abort?.aborted === true || ms <= 0) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    abort?.addEventListener('abort', done, { once: true });
  });
}
