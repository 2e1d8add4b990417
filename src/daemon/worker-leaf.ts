// Each worker generation's cgroup leaf, as the supervisor uses it: made before the spawn (with the
// kernel backstop, when configured), the spawn made inside it, its OOM kills read at the exit,
// and removed once the tree is gone. Without the cgroup backend, or when a leaf cannot be made,
// the generation has none and its tree is found by the /proc rules (logged).
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { hasMemoryMax, oomKillCount, setMemoryMax } from '../os/cgroup-leaf.js';
import type { WorkerCgroups } from '../os/worker-cgroups.js';

export interface WorkerLeaf {
  dir: string;
  /** memory.events oom_kill when the leaf was made (null: no memory controller). */
  oomKillsAtStart: number | null;
  /** Cleared when the spawn could not be made inside the leaf: the generation then has none. */
  bornInLeaf: boolean;
}

export class WorkerLeaves {
  /** Leaves that still held processes when released (a survivor): removed again at each release. */
  private readonly kept = new Set<string>();
  private backstopMissingSaid = false;

  constructor(private readonly cgroups: () => WorkerCgroups | null, private readonly logger: Logger) {}

  /** A fresh leaf for `generation`, or null: no cgroup backend, or the leaf could not be made. */
  open(generation: number, config: Config): WorkerLeaf | null {
    const cgroups = this.cgroups();
    if (cgroups === null) return null;
    try {
      const dir = cgroups.createLeaf(generation);
      this.setBackstop(dir, config);
      return { dir, oomKillsAtStart: oomKillCount(dir), bornInLeaf: true };
    } catch (err) {
      this.problem(`cannot make the leaf of worker generation ${generation}: ${(err as Error).message}; its tree is found by the /proc rules`);
      return null;
    }
  }

  /** The spawn wrapper that makes the child be born in the leaf (WorkerSpawnRequest.around). */
  around(leaf: WorkerLeaf): <T>(spawn: () => T) => T {
    const cgroups = this.cgroups();
    return (spawn) => {
      if (cgroups === null) return spawn();
      const { result, inLeaf } = cgroups.spawnInto(leaf.dir, spawn);
      leaf.bornInLeaf = inLeaf;
      return result;
    };
  }

  /** Whether the kernel's OOM killer killed a process in the leaf since it was made. */
  oomKilled(leaf: WorkerLeaf | null): boolean {
    if (leaf === null || leaf.oomKillsAtStart === null) return false;
    try {
      return (oomKillCount(leaf.dir) ?? 0) > leaf.oomKillsAtStart;
    } catch (err) {
      this.problem(`reading ${leaf.dir}/memory.events: ${(err as Error).message}`);
      return false;
    }
  }

  /** Removes the leaf once its tree is gone (and any kept earlier that has emptied since). Never throws. */
  release(leaf: WorkerLeaf | null): void {
    try {
      this.removeLeaves(leaf);
    } catch (err) {
      this.problem(`removing ${leaf?.dir ?? 'a kept leaf'}: ${(err as Error).message}`);
    }
  }

  private removeLeaves(leaf: WorkerLeaf | null): void {
    const cgroups = this.cgroups();
    if (cgroups === null) return;
    for (const dir of [...this.kept]) {
      if (cgroups.removeLeaf(dir)) this.kept.delete(dir);
    }
    if (leaf === null || cgroups.removeLeaf(leaf.dir)) return;
    this.kept.add(leaf.dir);
    this.problem(`${leaf.dir} still holds processes after the tree stop; it is kept and removed once empty`);
  }

  /** memory.max = worker_max_bytes × backstop_factor: the kernel's own limit, past the daemon's. */
  private setBackstop(dir: string, config: Config): void {
    const factor = config.cgroup.backstop_factor;
    const maxBytes = config.memory.worker_max_bytes;
    if (factor === null || maxBytes === null) return;
    if (!hasMemoryMax(dir)) {
      if (!this.backstopMissingSaid) this.problem(`cgroup.backstop_factor is set, but ${dir} has no memory controller (no memory.max): no kernel backstop`);
      this.backstopMissingSaid = true;
      return;
    }
    try {
      setMemoryMax(dir, maxBytes * factor);
    } catch (err) {
      this.problem(`cannot set memory.max of ${dir}: ${(err as Error).message}`);
    }
  }

  private problem(message: string): void {
    this.logger.emit({ kind: 'cgroup-problem', message });
  }
}
