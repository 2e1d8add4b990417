// Runs the memory guard: samples /proc, asks the pure policy (src/policy/memory-guard.ts) what to
// do, and carries out its one action at a time: SIGTERM then SIGKILL for a victim, or a worker
// restart through the supervisor. The policy chooses when to sample next.

import { monotonicMs } from '../os/monotonic-clock.js';
import type { Config } from '../config/types.js';
import type { MemoryStatus, TreeProcessStatus } from '../control/protocol.js';
import type { Logger } from '../log/logger.js';
import { isoTime } from '../log/iso-time.js';
import type { ProcessInfo, ProcTable, SampledProcess } from '../os/proc-table.js';
import { findTree, sameProcess, type TreeIdentity } from '../os/process-tree.js';
import { ProcessHandles } from '../os/process-handles.js';
import { TreeTracker } from '../os/tree-tracker.js';
import { signalIfSame } from '../os/signal.js';
import {
  initialMemoryGuardState, stepMemoryGuard,
  type KillAction, type MemoryGuardInput, type MemoryGuardState, type MemoryGuardStep, type RestartWorkerAction,
} from '../policy/memory-guard.js';
import { topProcesses, treeRssBytes, treeSwapBytes, type MemorySample } from '../policy/memory-sample.js';
import { cgroupMemoryBytes } from '../os/cgroup-leaf.js';
import { thresholdWarnings } from '../policy/memory-thresholds.js';

export interface MemoryGuardDeps {
  logger: Logger;
  table: ProcTable;
  uid: number;
  /** The daemon and its ancestors now: never a victim. */
  protectedPids: () => ReadonlySet<number>;
  treeIdentity: () => TreeIdentity;
  workerRunning: () => boolean;
  restartWorker: () => Promise<void>;
  /** Shared with the health loop, so the two take one full /proc scan per interval between them. */
  tree?: TreeTracker;
  /**
   * The current tree's cgroup leaf (cgroup backend; null: the /proc rules). Its members come from
   * the tracker, which reads the same leaf, and where the leaf has the memory controller the
   * tree's figure is the kernel's (memory.current + memory.swap.current).
   */
  treeLeaf?: () => string | null;
}

/** How often a victim is checked for being gone while it has its grace. */
const VICTIM_CHECK_MS = 50;
/** After SIGKILL a process is gone within milliseconds unless stuck in the kernel (D state). */
const AFTER_KILL_WAIT_MS = 2000;

interface Observation {
  sample: MemorySample;
  /** Tree members and extra candidates by pid, to signal exactly the process that was sampled. */
  processes: Map<number, SampledProcess>;
}

export class MemoryGuardLoop {
  private state: MemoryGuardState = initialMemoryGuardState();
  private last: Observation | null = null;
  /** What the latest status() looked at: its tree listing comes from the same look. */
  private statusSeen: Observation | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly tree: TreeTracker;

  constructor(private config: Config, private readonly deps: MemoryGuardDeps) {
    this.tree = deps.tree ?? new TreeTracker(deps.table);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const { totalBytes } = this.deps.table.memInfo();
    for (const message of thresholdWarnings(this.config.memory, totalBytes)) {
      this.deps.logger.emit({ kind: 'memory-threshold-warning', message });
    }
    this.tick();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  updateConfig(config: Config): void {
    this.config = config;
  }

  /**
   * Figures as they are now (a fresh look, ~1 ms, not fed to the policy: it must not count as one
   * of the guard's readings); the level and last action are the guard's own.
   */
  status(): MemoryStatus | null {
    const last = this.last;
    if (last === null) return null;
    let seen = last;
    if (this.running) {
      try {
        seen = this.observe();
      } catch (err) {
        this.deps.logger.emit({ kind: 'internal-error', message: `memory guard: sampling for status: ${(err as Error).message}` });
      }
    }
    this.statusSeen = seen;
    const s = seen.sample;
    const a = this.state.lastAction;
    return {
      level: this.state.lastLevel ?? 'ok',
      available_bytes: s.availableBytes,
      psi: s.psi === null ? null : { some_avg10: s.psi.someAvg10, full_avg10: s.psi.fullAvg10 },
      tree_rss_bytes: treeRssBytes(s.tree),
      tree_swap_bytes: treeSwapBytes(s.tree),
      tree_processes: s.tree.length,
      top: topProcesses(s.tree, 3).map((p) => ({ pid: p.pid, comm: p.comm, rss_bytes: p.rssBytes, swap_bytes: p.swapBytes })),
      last_action: a === null ? null : {
        kind: a.kind, reason: a.reason, pid: a.pid, comm: a.comm, rss_bytes: a.rssBytes, swap_bytes: a.swapBytes,
        at: isoTime(wallClockOf(a.atMs)),
      },
    };
  }

  /**
   * The tree the latest status() saw, each process with its parent and command line, at most `max`
   * (the worker main first, then by pid: parents mostly before their children); null before any sample.
   */
  treeListing(max: number): { processes: TreeProcessStatus[]; left_out: number } | null {
    const seen = this.statusSeen ?? this.last;
    if (seen === null) return null;
    const main = new Set(seen.sample.tree.filter((p) => p.isWorkerMain).map((p) => p.pid));
    const members = seen.sample.tree
      .map((p) => seen.processes.get(p.pid))
      .filter((p): p is SampledProcess => p !== undefined)
      .sort((a, b) => Number(main.has(b.pid)) - Number(main.has(a.pid)) || a.pid - b.pid);
    const processes = members.slice(0, max).map((p) => ({
      pid: p.pid, ppid: p.ppid, comm: p.comm, command: this.deps.table.cmdline(p.pid) ?? [], rss_bytes: p.rssBytes,
    }));
    return { processes, left_out: members.length - processes.length };
  }

  private tick(): void {
    this.timer = null;
    if (!this.running) return;
    let step: MemoryGuardStep;
    try {
      const observation = this.observe();
      this.last = observation;
      step = this.feed(observation.sample);
      if (step.action?.kind === 'kill') void this.kill(step.action);
      else if (step.action?.kind === 'restart-worker') void this.restart(step.action);
    } catch (err) {
      this.deps.logger.emit({ kind: 'internal-error', message: `memory guard: ${(err as Error).stack ?? String(err)}` });
      this.schedule(this.config.memory.poll_interval_ms);
      return;
    }
    this.schedule(step.nextPollMs);
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => this.tick(), delayMs);
    this.timer.unref();
  }

  private feed(input: MemoryGuardInput): MemoryGuardStep {
    const before = this.state.lastVerdict;
    const step = stepMemoryGuard(this.state, input, this.config.memory);
    this.state = step.state;
    const log = this.deps.logger;
    if (!('kind' in input)) {
      const tree = { treeRssBytes: treeRssBytes(input.tree), treeSwapBytes: treeSwapBytes(input.tree) };
      if (log.enabled('debug')) {
        log.emit({ kind: 'memory-sample', level: step.level ?? 'ok', availableBytes: input.availableBytes, ...tree, treeProcesses: input.tree.length, nextPollMs: step.nextPollMs });
      }
      // Polling loops log when the verdict changes, not on every tick.
      if (step.verdict !== before && step.verdict !== 'kill' && step.verdict !== 'restart') {
        log.emit({ kind: 'memory-verdict', level: step.level ?? 'ok', verdict: step.verdict, availableBytes: input.availableBytes, ...tree });
      }
    }
    return step;
  }

  private observe(): Observation {
    const { table, uid } = this.deps;
    const mem = table.memInfo();
    // hog_scope "user" needs the comm and RSS of every process, so each poll scans all of /proc
    // (~12 ms with 1000 processes, kernel time). The tree alone is tracked incrementally (< 1 ms):
    // see TreeTracker.
    const procs = this.config.memory.hog_scope === 'user' ? table.scan() : null;
    const identity = this.deps.treeIdentity();
    // A walking tracker, or the leaf, finds the tree without the scan, escapees findTree cannot see included.
    const leaf = this.deps.treeLeaf?.() ?? null;
    const found = procs !== null && leaf === null && !this.tree.walks ? findTree(table, identity, procs) : this.tree.sample(identity, monotonicMs()).members;
    const members = this.withSwap(found, mem.swapTotalBytes);
    const processes = new Map<number, SampledProcess>(members.map((p) => [p.pid, p]));
    const extraCandidates: MemorySample['extraCandidates'][number][] = [];
    if (procs !== null) {
      // Only when configured: same-UID processes outside the tree, by name, never the daemon or its ancestors.
      const names = new Set(this.config.memory.hog_names);
      const protectedPids = this.deps.protectedPids();
      for (const p of procs) {
        if (!names.has(p.comm) || processes.has(p.pid) || protectedPids.has(p.pid) || p.state === 'Z') continue;
        if (table.uidOf(p.pid) !== uid) continue;
        const [sampled] = this.withSwap([p], mem.swapTotalBytes);
        processes.set(p.pid, sampled!);
        extraCandidates.push({ pid: p.pid, comm: p.comm, rssBytes: p.rssBytes, swapBytes: sampled!.swapBytes });
      }
    }
    return {
      processes,
      sample: {
        atMs: monotonicMs(),
        availableBytes: mem.availableBytes,
        totalBytes: mem.totalBytes,
        psi: table.pressure(),
        tree: members.map((p) => ({ pid: p.pid, comm: p.comm, rssBytes: p.rssBytes, swapBytes: p.swapBytes, isWorkerMain: sameProcess(identity.root, p) })),
        extraCandidates,
        treeBytes: leaf === null ? null : cgroupMemoryBytes(leaf),
      },
    };
  }

  /**
   * Swap is read for the sampled processes only (a status read each, about as much as their stat
   * read), never for a full scan; and not at all while no swap is configured (SwapTotal 0, as on
   * many servers): then no process can have any.
   */
  private withSwap(procs: ProcessInfo[], swapTotalBytes: number): SampledProcess[] {
    return swapTotalBytes > 0 ? this.deps.table.withSwap(procs) : procs.map((p) => ({ ...p, swapBytes: 0 }));
  }

  private async kill(action: KillAction): Promise<void> {
    const { logger, table } = this.deps;
    const victim = this.last?.processes.get(action.pid);
    const before = this.last!.sample;
    const treeBefore = treeRssBytes(before.tree);
    const swapBefore = treeSwapBytes(before.tree);
    const m = this.config.memory;
    const thresholdBytes = action.reason === 'critical' ? m.critical_threshold_bytes : m.min_available_bytes;
    logger.emit({
      kind: 'memory-kill', pid: action.pid, comm: action.comm, rssBytes: action.rssBytes, swapBytes: action.swapBytes,
      reason: action.reason, availableBytes: action.availableBytes, thresholdBytes, treeRssBytes: treeBefore, treeSwapBytes: swapBefore,
    });
    // The victim's pidfd, opened at the SIGTERM and checked against the sample, carries the SIGKILL
    // too: a victim that exits during the grace leaves its pid to no one we would hit (issue #18).
    const handles = new ProcessHandles(table);
    try {
      if (victim !== undefined && signalIfSame(table, victim, 'SIGTERM', handles) === 'sent') {
        // A stopped (SIGSTOP) victim runs its TERM handler only once continued: as tree stops do (#15).
        signalIfSame(table, victim, 'SIGCONT', handles);
        if (!(await waitGone(table, victim, action.graceMs))) {
          logger.emit({ kind: 'memory-kill-escalated', pid: action.pid, comm: action.comm, graceMs: action.graceMs });
          if (signalIfSame(table, victim, 'SIGKILL', handles) === 'sent') await waitGone(table, victim, AFTER_KILL_WAIT_MS);
        }
      }
    } catch (err) {
      logger.emit({ kind: 'internal-error', message: `memory guard: killing pid ${action.pid}: ${(err as Error).message}` });
    } finally {
      handles.closeAll();
    }
    // A failed read must neither leave the kill in flight forever (no more actions) nor reject this
    // un-awaited promise (an unhandled rejection ends the daemon).
    try {
      const after = this.observe();
      this.last = after;
      logger.emit({
        kind: 'memory-kill-done', pid: action.pid,
        availableBefore: before.availableBytes, availableAfter: after.sample.availableBytes,
        treeRssBefore: treeBefore, treeRssAfter: treeRssBytes(after.sample.tree),
        treeSwapBefore: swapBefore, treeSwapAfter: treeSwapBytes(after.sample.tree),
      });
    } catch (err) {
      logger.emit({ kind: 'internal-error', message: `memory guard: reading memory after killing pid ${action.pid}: ${(err as Error).message}` });
    }
    this.feed({ kind: 'kill-finished', atMs: monotonicMs(), pid: action.pid });
  }

  private async restart(action: RestartWorkerAction): Promise<void> {
    const { logger } = this.deps;
    if (this.deps.workerRunning()) {
      const limit = action.reason === 'tree_limit' ? this.config.memory.worker_max_bytes : null;
      logger.emit({
        kind: 'memory-restart', reason: action.reason, availableBytes: action.availableBytes, treeBytes: action.treeBytes,
        treeRssBytes: action.treeRssBytes, treeSwapBytes: action.treeSwapBytes, limitBytes: limit,
      });
      try {
        await this.deps.restartWorker();
        // The old tree is gone by now (the new worker waits out its backoff): the figures after.
        const after = this.observe();
        this.last = after;
        logger.emit({
          kind: 'memory-restart-done',
          availableBefore: action.availableBytes, availableAfter: after.sample.availableBytes,
          treeRssBefore: action.treeRssBytes, treeRssAfter: treeRssBytes(after.sample.tree),
          treeSwapBefore: action.treeSwapBytes, treeSwapAfter: treeSwapBytes(after.sample.tree),
        });
      } catch (err) {
        logger.emit({ kind: 'internal-error', message: `memory guard: restarting the worker: ${(err as Error).message}` });
      }
    }
    this.feed({ kind: 'restart-finished', atMs: monotonicMs() });
  }
}

/** Waits until the sampled process (same pid and start time) is gone or a zombie; false on timeout. */
async function waitGone(table: ProcTable, proc: SampledProcess, timeoutMs: number): Promise<boolean> {
  const deadline = monotonicMs() + timeoutMs;
  for (;;) {
    const now = table.read(proc.pid);
    if (now === null || now.startTimeTicks !== proc.startTimeTicks || now.state === 'Z' || now.state === 'X') return true;
    if (monotonicMs() >= deadline) return false;
    await new Promise((r) => setTimeout(r, VICTIM_CHECK_MS));
  }
}

/** Converts a monotonicMs() time to wall-clock ms for status. */
function wallClockOf(atMs: number): number {
  return Date.now() - (monotonicMs() - atMs);
}
