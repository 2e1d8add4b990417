// The daemon's cgroup v2 leaves: the daemon itself in `daemon`, each worker generation in a fresh
// `worker-<generation>`. cgroup v2 lets only leaves hold processes once a controller is enabled
// below a cgroup ("no internal processes"), so the directory that holds them holds no process.
//
// Which directory holds them: the daemon's own cgroup when the daemon is alone in it (a systemd
// service with Delegate=yes), or else a private sub-directory of it, since a shared cgroup (a
// login shell's, a test runner's, other daemons') is not the daemon's to take over. The private
// directory is named `autopilotd-<hash of the pid file>-<pid>-<start ticks>`: the hash names the
// instance (the pid file's lock makes one daemon its owner), the pid and start time its creator,
// so a successor of the same instance finds the leftovers of a predecessor killed with SIGKILL
// and tells a dead creator from a live one.
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { availableControllers, cgroupProcs, enableForChildren, hasCgroupKill, isPopulated, moveProcess } from './cgroup-leaf.js';

export const DAEMON_LEAF = 'daemon';
const WORKER_LEAF = /^worker-\d+$/;
const PRIVATE_DIR = /^autopilotd-([0-9a-f]{12})-(\d+)-(\d+)$/;

/** No writable cgroup v2 directory: `message` says why, in words. */
export class CgroupUnavailable extends Error {}

export interface WorkerCgroupsOptions {
  /** The daemon's own cgroup v2 directory (ownCgroupDir). */
  base: string;
  /** Names the instance: the pid file's path. */
  instanceKey: string;
  pid: number;
  startTicks: number;
  /** Whether the process with this pid and start time still runs (a private directory's creator). */
  isRunning(pid: number, startTicks: number): boolean;
  /** Told of a failure that changes nothing the caller must act on (a move back, a leftover kept). */
  onProblem(message: string): void;
}

/** Leaves an earlier daemon left behind, and whether their directory goes with them. */
export interface Leftover {
  dir: string;
  leaves: string[];
  /** A predecessor's private directory (removed once empty); false for leaves in our own home. */
  removeDir: boolean;
}

export function privateDirPrefix(instanceKey: string): string {
  return `autopilotd-${fnv1a48(instanceKey)}-`;
}

/**
 * The low 48 bits of the key's 64-bit FNV-1a, as 12 hex digits: it only tells instances apart in a directory name
 * (creator pid and start ticks follow it), so no cryptographic hash, whose module costs the daemon
 * ~0.6 MiB of RSS to load (BENCHMARKS.md, "Daemon memory").
 */
function fnv1a48(key: string): string {
  let hash = 0xcbf29ce484222325n; // FNV-1a 64-bit, its low 48 bits kept
  for (const byte of Buffer.from(key, 'utf8')) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return (hash & 0xffffffffffffn).toString(16).padStart(12, '0');
}

export class WorkerCgroups {
  /** Set when the memory controller is enabled for the leaves (memory.* files in each). */
  readonly memory: boolean;

  private constructor(
    private readonly opts: WorkerCgroupsOptions,
    /** The directory that holds the leaves. */
    readonly home: string,
    /** True when home is our private sub-directory; false when it is our own (delegated) cgroup. */
    readonly privateHome: boolean,
  ) {
    this.memory = this.enableMemory();
  }

  /**
   * Makes the leaves' home and moves the daemon into its `daemon` leaf. Throws CgroupUnavailable
   * (having undone what it made) when the hierarchy cannot be written or lacks cgroup.kill.
   */
  static open(opts: WorkerCgroupsOptions): WorkerCgroups {
    const alone = isAlone(opts.base, opts.pid);
    const home = alone ? opts.base : join(opts.base, `${privateDirPrefix(opts.instanceKey)}${opts.pid}-${opts.startTicks}`);
    const made: string[] = [];
    try {
      for (const dir of alone ? [join(home, DAEMON_LEAF)] : [home, join(home, DAEMON_LEAF)]) {
        if (makeDir(dir)) made.push(dir);
      }
      if (!hasCgroupKill(join(home, DAEMON_LEAF))) throw new Error('the kernel has no cgroup.kill (Linux 5.14 or later is needed)');
      moveProcess(join(home, DAEMON_LEAF), opts.pid);
    } catch (err) {
      for (const dir of made.reverse()) removeDir(dir);
      throw new CgroupUnavailable(`cannot use ${alone ? 'our cgroup' : 'a private sub-directory of our cgroup'} ${home}: ${describe(err, false)}`);
    }
    return new WorkerCgroups(opts, home, !alone);
  }

  get daemonLeaf(): string {
    return join(this.home, DAEMON_LEAF);
  }

  /** A fresh empty leaf for `generation`. Throws when it cannot be made or already holds processes. */
  createLeaf(generation: number): string {
    const leaf = join(this.home, `worker-${generation}`);
    if (!makeDir(leaf) && isPopulated(leaf)) throw new Error(`${leaf} already holds processes`);
    return leaf;
  }

  /**
   * Runs `spawn` (a synchronous fork) with the daemon inside `leaf`, so the child is born there:
   * no moment exists in which it could fork outside it. The daemon goes back to its own leaf right
   * after; should that fail, the leaf holds the daemon, which lookAtLeaf and killLeaf then see as
   * protected (never killed, never a member), and the problem is reported. `inLeaf` is false when
   * the daemon could not enter the leaf (reported): the spawn then ran in the daemon's own leaf.
   */
  spawnInto<T>(leaf: string, spawn: () => T): { result: T; inLeaf: boolean } {
    try {
      moveProcess(leaf, this.opts.pid);
    } catch (err) {
      this.opts.onProblem(`cannot move the daemon into ${leaf} to spawn there: ${describe(err)}`);
      return { result: spawn(), inLeaf: false };
    }
    try {
      return { result: spawn(), inLeaf: true };
    } finally {
      this.backToDaemonLeaf(leaf);
    }
  }

  private backToDaemonLeaf(leaf: string): void {
    try {
      moveProcess(this.daemonLeaf, this.opts.pid);
    } catch (err) {
      this.opts.onProblem(`cannot move the daemon back from ${leaf} to ${this.daemonLeaf}: ${describe(err)}`);
    }
  }

  /** Removes a leaf once empty: true when it is gone, false while processes are still in it. */
  removeLeaf(leaf: string): boolean {
    return removeDir(leaf);
  }

  /** removeLeaf, and a report when the leaf must be kept. */
  private removeOrSay(dir: string): boolean {
    if (removeDir(dir)) return true;
    this.opts.onProblem(`cgroup ${dir} still holds processes; it is kept`);
    return false;
  }

  /**
   * What earlier daemons of this instance left: leaves in our own cgroup, or the private directories
   * of creators that are no longer running. A private directory whose creator runs belongs to a
   * live daemon (one that lost its lock file) and is never named here.
   */
  leftovers(): Leftover[] {
    if (!this.privateHome) {
      const leaves = childDirs(this.home).filter((name) => WORKER_LEAF.test(name)).map((name) => join(this.home, name));
      return leaves.length === 0 ? [] : [{ dir: this.home, leaves, removeDir: false }];
    }
    const prefix = privateDirPrefix(this.opts.instanceKey);
    return this.deadPrivateDirs().filter((dir) => dir.name.startsWith(prefix)).map(({ path }) => ({
      dir: path, leaves: childDirs(path).map((name) => join(path, name)), removeDir: true,
    }));
  }

  /** Removes a leftover's leaves (each must be empty by now) and its directory; false when some remain. */
  removeLeftover(leftover: Leftover): boolean {
    let all = true;
    for (const leaf of leftover.leaves) all = this.removeOrSay(leaf) && all;
    if (all && leftover.removeDir) all = this.removeOrSay(leftover.dir);
    return all;
  }

  /**
   * Private directories of other instances whose creator is gone and in which no process is left:
   * removed, so daemons killed with SIGKILL leave no empty cgroups behind for good. One that still
   * holds processes is left for its own instance's next daemon, which stops them first.
   */
  removeEmptyOfOthers(): string[] {
    const removed: string[] = [];
    if (!this.privateHome) return removed;
    const uid = process.getuid?.();
    for (const { path } of this.deadPrivateDirs()) {
      // Housekeeping for others: a directory another daemon removes under us (its own successor,
      // in parallel) is skipped, and no failure here stops our own start.
      try {
        if (statSync(path, { throwIfNoEntry: false })?.uid !== uid || isPopulated(path)) continue;
        for (const leaf of childDirs(path)) removeDir(join(path, leaf));
        if (removeDir(path)) removed.push(path);
      } catch (err) {
        this.opts.onProblem(`cannot remove the empty cgroup ${path} of an earlier daemon: ${describe(err)}`);
      }
    }
    return removed;
  }

  private deadPrivateDirs(): { name: string; path: string }[] {
    const found: { name: string; path: string }[] = [];
    for (const name of childDirs(this.opts.base)) {
      const m = PRIVATE_DIR.exec(name);
      const path = join(this.opts.base, name);
      if (m === null || path === this.home || this.opts.isRunning(Number(m[2]), Number(m[3]))) continue;
      found.push({ name, path });
    }
    return found;
  }

  /**
   * At exit: the leaves (each must be empty by now) and the private directory, after the daemon
   * moved back to the cgroup it came from. In our own (delegated) cgroup the daemon stays in its
   * leaf: it exits right after, and the service manager removes the cgroup with the service.
   */
  dispose(): void {
    const leaves = childDirs(this.home).filter((name) => WORKER_LEAF.test(name)).map((name) => join(this.home, name));
    for (const leaf of leaves) this.removeOrSay(leaf);
    if (!this.privateHome) return;
    try {
      moveProcess(this.opts.base, this.opts.pid);
    } catch (err) {
      this.opts.onProblem(`cannot move the daemon back to ${this.opts.base}: ${describe(err)}; ${this.home} is kept`);
      return;
    }
    if (this.removeOrSay(this.daemonLeaf)) this.removeOrSay(this.home);
  }

  /** The memory controller for the leaves, when the home may hand it on; off (and said) otherwise. */
  private enableMemory(): boolean {
    if (!availableControllers(this.home).includes('memory')) return false;
    try {
      enableForChildren(this.home, 'memory');
      return true;
    } catch (err) {
      this.opts.onProblem(`cannot enable the memory controller in ${this.home}: ${describe(err)}; tree memory is summed per process`);
      return false;
    }
  }
}

/** The daemon is the one process in its cgroup, and no other daemon lives in its `daemon` leaf. */
function isAlone(base: string, pid: number): boolean {
  const procs = cgroupProcs(base);
  return procs.length === 1 && procs[0] === pid && !isPopulated(join(base, DAEMON_LEAF));
}

function childDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** mkdir; false when it existed already. */
function makeDir(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** rmdir; true when the directory is gone, false while processes are in it (EBUSY) or below it. */
function removeDir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY' || code === 'ENOTEMPTY') return false;
    throw err;
  }
}

/** `mkdir EACCES (path)`: the failed call in words; `withPath` false where the message names it already. */
function describe(err: unknown, withPath = true): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === undefined || e.syscall === undefined) return e.message ?? String(err);
  return `${e.syscall} ${e.code}${e.path === undefined || !withPath ? '' : ` (${e.path})`}`;
}
