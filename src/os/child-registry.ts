// Which children of this process Node's child_process spawned, for the whole process (issue #18).
// As a child subreaper the daemon adopts every orphan among its descendants, and must reap those
// that end (they would stay zombies), but never a child libuv spawned: libuv waitpid()s each of
// its own children by pid on SIGCHLD, and one reaped by anyone else loses its exit status (libuv
// would never report that exit). So a zombie child is reaped only when it is not in this registry,
// and never with waitpid(-1).
//
// Why no spawn site can be missed: every asynchronous child process Node makes (spawn, fork,
// exec, execFile; in our code or a dependency's) is a ChildProcess started by
// ChildProcess.prototype.spawn. That one method is wrapped here, once per process, so each pid is
// recorded synchronously as the fork returns, before any callback can run and see the child, even
// as a zombie. (The 'child_process' diagnostics channel fires before the fork, with no pid yet.)
// spawnSync and execSync run a loop of their own and reap their child before they return, so no
// such child outlives the call. Children that existed before install() are taken as spawned
// (preexisting): never reaped, never adopted. Worker threads have their own ChildProcess class:
// the daemon runs none.
//
// A pid leaves the registry once its 'exit' was emitted: libuv has reaped it by then, so from that
// moment the number names some other process, if any.
import { ChildProcess } from 'node:child_process';

export type ChildRole = 'worker' | 'helper';

type SpawnMethod = (this: ChildProcess, ...args: unknown[]) => unknown;

export class ChildRegistry {
  private readonly live = new Map<number, ChildRole>();
  /** Children from before install(), by pid and start time: their exit is not seen here. */
  private readonly preexisting = new Map<number, number>();
  /** Pids of helpers that exited: the id of a group or session their leftovers may still hold. */
  private readonly lingering = new Set<number>();

  /** Whether this child (pid and start time) is one child_process spawned and libuv still owns, or one from before install(). */
  owns(pid: number, startTimeTicks: number): boolean {
    return this.live.has(pid) || this.preexisting.get(pid) === startTimeTicks;
  }

  /** Whether `pid` is a live child spawned as the worker (markWorker). */
  isWorker(pid: number): boolean {
    return this.live.get(pid) === 'worker';
  }

  /** Tags a just spawned child as the worker: every other child is a helper of the daemon. */
  markWorker(pid: number): void {
    if (this.live.has(pid)) this.live.set(pid, 'worker');
  }

  /**
   * The group and session ids helpers may hold: the pid of each live helper (a detached one leads
   * its own group and session) and of each helper that exited, until forgetUnheld() drops it.
   */
  helperIds(): Set<number> {
    const ids = new Set(this.lingering);
    for (const [pid, role] of this.live) if (role === 'helper') ids.add(pid);
    return ids;
  }

  /** Drops the ids of exited helpers that no process holds any more: the kernel may hand them out again. */
  forgetUnheld(held: (id: number) => boolean): void {
    for (const id of this.lingering) if (!held(id)) this.lingering.delete(id);
  }

  /** Records a child; its 'exit' removes it (the first listener: it runs before any caller's). */
  record(child: ChildProcess): void {
    const pid = child.pid;
    if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 0) return;
    this.live.set(pid, 'helper');
    child.once('exit', () => this.exited(pid));
  }

  /** Children that existed before install(): owned by whoever spawned them, never reaped here. */
  recordPreexisting(children: readonly { pid: number; startTimeTicks: number }[]): void {
    for (const c of children) this.preexisting.set(c.pid, c.startTimeTicks);
  }

  private exited(pid: number): void {
    if (this.live.get(pid) === 'helper') this.lingering.add(pid);
    this.live.delete(pid);
  }
}

let installed: ChildRegistry | null = null;

/**
 * The process's registry, wrapping ChildProcess.prototype.spawn on the first call. `existing`: the
 * children this process has now (read from /proc by the caller), recorded as preexisting.
 */
export function installChildRegistry(existing: () => readonly { pid: number; startTimeTicks: number }[]): ChildRegistry {
  if (installed !== null) return installed;
  const registry = new ChildRegistry();
  const proto = ChildProcess.prototype as unknown as { spawn: SpawnMethod };
  const original = proto.spawn;
  if (typeof original !== 'function') throw new Error('ChildProcess.prototype.spawn is not a function: cannot record spawned children');
  proto.spawn = function spawnRecorded(this: ChildProcess, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    registry.record(this);
    return result;
  };
  registry.recordPreexisting(existing());
  installed = registry;
  return registry;
}

/** The registry if installChildRegistry() ran in this process, else null. */
export function childRegistry(): ChildRegistry | null {
  return installed;
}
