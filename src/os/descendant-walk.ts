// The worker tree as the daemon's own descendants (issue #18). The daemon is a child subreaper
// (PR_SET_CHILD_SUBREAPER): an orphan among its descendants is re-parented to it, not to init, so
// nothing the worker starts leaves the daemon's descendants, whatever group, session or
// environment it takes. The tree is found by following the children links down from the daemon
// (/proc/<pid>/task/<tid>/children), at a cost that grows with the descendants, not with the
// machine: no listing of /proc, no environment read.
//
// Which descendants are the worker's. The daemon's children are the worker, its helpers (health
// probes, notify commands, systemd-notify: every other child that child_process spawned, see
// child-registry.ts), and adopted orphans. An adopted orphan is the worker's unless its group or
// session is a helper's (a helper's pid, while that helper lives and afterwards while any process
// still holds that id) or the daemon's own (where a helper that was not given a session of its own
// leaves its orphans). Everything below a child is of that child's kind, and only the worker's are
// walked: a helper's subtree is not read at all. (Whoever holds a helper's id as group or session
// is either one of the daemon's children or inside the worker's subtrees: a session's members
// descend from its leader, and each of them whose parents in it all exited was adopted.)
//
// A walk is not atomic. A process that exits between the read of its parent's children and the
// read of its own hands its children to the daemon, whose list was read first: they would be
// missed. So each process's children are read before its stat: when the stat then shows it alive,
// it still had all its children when they were read. A walk in which a visited process (or thread)
// of the worker's vanished, or was first seen dead, is not conclusive and is walked again at once,
// a few times at most; a stop never calls the tree gone from an inconclusive walk. A zombie already
// seen dead by an earlier walk had handed its children over before that walk.
//
// Zombies the daemon adopted are reaped here (reap(pid), one pid at a time): any dead child of the
// daemon that child_process did not spawn. Never waitpid(-1), which would take libuv's children too.
import { installChildRegistry, type ChildRegistry } from './child-registry.js';
import type { NativeLoad, ReapedChild } from './native.js';
import { errnoOf, type ProcessInfo, type ProcTable } from './proc-table.js';
import { refineIdentity, type TracedTree, type TreeIdentity } from './process-tree.js';

/** An inconclusive walk is walked again at once, up to this many passes in all. */
export const WALK_MAX_PASSES = 3;

export interface WalkedTree extends TracedTree {
  /** Every process of the worker's subtrees, zombies and other users' included: what a signal to its group can reach. */
  procs: ProcessInfo[];
  /** False when a process of the worker's vanished during every pass: its children may have been missed. */
  conclusive: boolean;
}

export interface DescendantWalkerOptions {
  table: ProcTable;
  registry: ChildRegistry;
  /** waitpid(pid, WNOHANG) of one child (the native helper's reap): null while it runs. */
  reap: (pid: number) => ReapedChild | null;
  /** Told of each adopted zombie reaped. */
  onReaped?: (child: ReapedChild) => void;
  /** The daemon; default this process. */
  selfPid?: number;
}

interface Pass {
  /** The worker's subtrees, in visiting order. */
  worker: ProcessInfo[];
  conclusive: boolean;
  /** Dead processes this pass saw, by key. */
  dead: Set<string>;
  /** Every group and session id a descendant holds. */
  held: Set<number>;
}

interface Visit {
  p: ProcessInfo | null;
  kids: { pids: number[]; whole: boolean } | null;
}

export class DescendantWalker {
  private readonly table: ProcTable;
  private readonly registry: ChildRegistry;
  private readonly selfPid: number;
  /** The daemon's own group and session: a helper spawned without its own leaves its orphans there. */
  private readonly ownIds: ReadonlySet<number>;
  /** Dead processes seen by the last pass: they handed their children over before it. */
  private dead = new Set<string>();
  /** Real uid per process life, read once (stopTree reads it again before any signal). */
  private uids = new Map<string, number | null>();
  /** Thread count of each process of the worker's at the last pass, by pid (see visit). */
  private threads = new Map<number, number>();

  constructor(private readonly opts: DescendantWalkerOptions) {
    this.table = opts.table;
    this.registry = opts.registry;
    this.selfPid = opts.selfPid ?? process.pid;
    const self = this.table.read(this.selfPid);
    if (self === null) throw new Error(`cannot read /proc/${this.selfPid}/stat: our own process is not listed`);
    this.ownIds = new Set([self.pgid, self.sid]);
  }

  /**
   * The worker's tree by the rules at the top of this file, with `identity` refined as a scan-based
   * look would (refineIdentity; `previous`: the members the last look at this tree returned).
   */
  workerTree(identity: TreeIdentity, previous: readonly ProcessInfo[] | null = null): WalkedTree {
    const walk = this.walk();
    const refined = refineIdentity(identity, this.withGroupHolder(walk.worker, identity), previous);
    const members: ProcessInfo[] = [];
    const foreign: ProcessInfo[] = [];
    for (const p of walk.worker) {
      if (isDead(p) || p.kernelThread || refined.protectedPids.has(p.pid)) continue;
      if (this.uidOf(p) === refined.uid) members.push(p);
      else foreign.push(p);
    }
    return { members, foreign, undecided: [], identity: refined, procs: walk.worker, conclusive: walk.conclusive };
  }

  /** Reaps the daemon's adopted zombies without walking further (on SIGCHLD). */
  reapAdopted(): void {
    const own = this.table.childrenOf(this.selfPid);
    if (own === null) return;
    for (const pid of own.pids) {
      const p = this.table.read(pid);
      if (p !== null && isDead(p) && !this.registry.owns(p.pid, p.startTimeTicks)) this.reapOne(pid);
    }
  }

  /** One walk: passes until one is conclusive, at most WALK_MAX_PASSES. */
  private walk(): Pass {
    let pass = this.pass();
    for (let n = 1; n < WALK_MAX_PASSES && !pass.conclusive; n++) pass = this.pass();
    if (pass.conclusive) this.registry.forgetUnheld((id) => pass.held.has(id));
    const keep = new Set(pass.worker.map(keyOf));
    for (const key of this.uids.keys()) if (!keep.has(key)) this.uids.delete(key);
    this.threads = new Map(pass.worker.map((p) => [p.pid, p.threads]));
    return pass;
  }

  private pass(): Pass {
    const own = this.table.childrenOf(this.selfPid);
    if (own === null) throw new Error(`cannot read /proc/${this.selfPid}/task: our own process is not listed`);
    // A thread of ours that went handed its children to another, maybe one already read.
    const s: Pass = { worker: [], conclusive: own.whole, dead: new Set(), held: new Set() };
    const helperIds = this.registry.helperIds();
    for (const pid of new Set(own.pids)) {
      const visit = this.visit(pid);
      const p = visit.p;
      // Only libuv or we reap our children, and neither has run since the list was read: cannot
      // happen, but if it did, its children may have moved.
      if (p === null) {
        s.conclusive = false;
        continue;
      }
      const spawned = this.registry.owns(p.pid, p.startTimeTicks);
      if (isDead(p)) {
        this.sawDead(p, s);
        if (!spawned) {
          this.reapOne(p.pid);
          continue;
        }
      }
      const ofWorker = spawned ? this.registry.isWorker(p.pid) : !(this.isHelperId(p.pgid, helperIds) || this.isHelperId(p.sid, helperIds));
      this.subtree(visit, ofWorker, s);
    }
    this.dead = s.dead;
    return s;
  }

  private isHelperId(id: number, helperIds: ReadonlySet<number>): boolean {
    return helperIds.has(id) || this.ownIds.has(id);
  }

  /** Records `root` and, for the worker's, everything below it; depth first, no recursion. */
  private subtree(root: Visit, ofWorker: boolean, s: Pass): void {
    s.held.add(root.p!.pgid);
    s.held.add(root.p!.sid);
    if (!ofWorker) return;
    const stack: Visit[] = [root];
    for (let v = stack.pop(); v !== undefined; v = stack.pop()) {
      const p = v.p!;
      s.held.add(p.pgid);
      s.held.add(p.sid);
      s.worker.push(p);
      if (v.kids === null || !v.kids.whole) s.conclusive = false;
      for (const pid of v.kids?.pids ?? []) {
        const kid = this.visit(pid);
        if (kid.p === null) {
          s.conclusive = false;
          continue;
        }
        if (isDead(kid.p)) this.sawDead(kid.p, s);
        stack.push(kid);
      }
    }
  }

  /**
   * Children first, then stat: a stat that shows the process alive vouches for the list before it.
   * A process that had one thread at the last walk has its main thread's list read alone (no
   * listing of its threads); should the stat show more threads now, all are read, then the stat
   * again. (A thread that forked and exited between the two reads hands its children to another
   * thread of the same process, which then has them at the next walk.)
   */
  private visit(pid: number): Visit {
    const single = this.threads.get(pid) === 1;
    let kids = this.table.childrenOf(pid, single);
    let p = this.table.read(pid);
    if (single && p !== null && p.threads !== 1) {
      kids = this.table.childrenOf(pid);
      p = this.table.read(pid);
    }
    return { kids, p };
  }

  private sawDead(p: ProcessInfo, s: Pass): void {
    const key = keyOf(p);
    s.dead.add(key);
    if (!this.dead.has(key)) s.conclusive = false;
  }

  /** `procs`, plus whoever holds the group's number as a pid if that is not in them: refineIdentity's reuse test needs it. */
  private withGroupHolder(procs: ProcessInfo[], identity: TreeIdentity): ProcessInfo[] {
    const group = identity.pgid;
    if (group === null || procs.some((p) => p.pid === group)) return procs;
    const holder = this.table.read(group);
    return holder === null ? procs : [...procs, holder];
  }

  private uidOf(p: ProcessInfo): number | null {
    const key = keyOf(p);
    let uid = this.uids.get(key);
    if (uid === undefined) {
      uid = this.table.uidOf(p.pid);
      this.uids.set(key, uid);
    }
    return uid;
  }

  private reapOne(pid: number): void {
    let reaped: ReapedChild | null;
    try {
      reaped = this.opts.reap(pid);
    } catch (err) {
      // Not our child any more: nothing to reap.
      if (errnoOf(err) === 'ECHILD') return;
      throw err;
    }
    if (reaped !== null) this.opts.onReaped?.(reaped);
  }
}

function isDead(p: ProcessInfo): boolean {
  return p.state === 'Z' || p.state === 'X';
}

function keyOf(p: ProcessInfo): string {
  return `${p.pid}:${p.startTimeTicks}`;
}

export type DescendantWalkSetup = { walker: DescendantWalker; reason: null } | { walker: null; reason: string };

/**
 * Makes this process a child subreaper and returns its walker; or, where that cannot be had, why
 * (the tree is then found by /proc scans, process-tree.ts). Call it before the first spawn: the
 * registry of spawned children must see every one, and orphans of a child spawned earlier would go
 * to init.
 */
export function enableDescendantWalk(native: NativeLoad, table: ProcTable, onReaped?: (child: ReapedChild) => void): DescendantWalkSetup {
  // The load failure itself is logged on its own (native-missing).
  if (!native.loaded) return { walker: null, reason: 'no PR_SET_CHILD_SUBREAPER without the native addon' };
  const own = table.childrenOf(process.pid);
  if (own === null || !own.whole) return { walker: null, reason: `${table.procRoot}/${process.pid}/task/*/children not readable (a kernel without CONFIG_PROC_CHILDREN)` };
  // The registry first: from now on every spawn is recorded, so no child of libuv is ever reaped here.
  const registry = installChildRegistry(() => own.pids.flatMap((pid) => table.read(pid) ?? []));
  try {
    native.helper.setChildSubreaper();
  } catch (err) {
    return { walker: null, reason: `prctl(PR_SET_CHILD_SUBREAPER) failed: ${(err as Error).message}` };
  }
  return { walker: new DescendantWalker({ table, registry, reap: (pid) => native.helper.reap(pid), onReaped }), reason: null };
}
