// What the daemon tells its service manager (sd_notify, only when NOTIFY_SOCKET is set; issue #16
// and docs/supervision.md, "What systemd is told"): READY=1 once it listens and the first spawn's
// outcome is known, STATUS= one line on every worker state change and memory or health action,
// WATCHDOG=1 from the event loop, RELOADING=1 ... READY=1 around a reload, STOPPING=1 at shutdown.

import type { Logger, LogRecord } from '../log/logger.js';
import type { LogEvent } from '../log/events.js';
import { sdMessage, monotonicUsec, type SdNotifier } from '../os/sd-notify.js';
import { describeAction, formatServiceStatus, type ServiceAction } from '../policy/service-status.js';
import type { MemoryGuardLoop } from './memory-guard-loop.js';
import type { WorkerSupervisor } from './worker-supervisor.js';

export interface ServiceNotifyDeps {
  notifier: SdNotifier | null;
  /** WATCHDOG=1 this often (half of WATCHDOG_USEC), or null when no watchdog is asked for. */
  watchdogMs: number | null;
  logger: Logger;
  supervisor: WorkerSupervisor;
  memoryGuard: MemoryGuardLoop;
}

/** The events after which the STATUS line may read differently. */
const STATUS_EVENTS = new Set<LogEvent['kind']>([
  'worker-state', 'worker-spawned', 'worker-failed', 'restart-scheduled', 'memory-verdict',
  'memory-kill', 'memory-kill-escalated', 'memory-kill-done', 'memory-restart', 'memory-restart-done',
]);

export class ServiceNotify {
  private watchdog: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private statusDue: NodeJS.Immediate | null = null;
  private action: string | null = null;
  private lastStatus: string | null = null;

  constructor(private readonly deps: ServiceNotifyDeps) {}

  /** Starts the watchdog pings and the STATUS updates; returns their undo. */
  start(): () => void {
    const { notifier, watchdogMs, logger } = this.deps;
    if (notifier === null) return () => {};
    if (watchdogMs !== null) {
      // From the event loop itself: a daemon wedged in a loop, or stopped, misses its pings.
      this.watchdog = setInterval(() => notifier.send(sdMessage.watchdog()), watchdogMs);
      this.watchdog.unref();
      notifier.send(sdMessage.watchdog());
    }
    // The log's events are the one account of what happened; the line follows them rather than
    // having each part call in. Built on the next turn: one line for a burst of events, and no
    // /proc look inside the memory guard's own step.
    this.unsubscribe = logger.subscribe((r) => this.heard(r));
    return () => this.stop();
  }

  /** The control socket listens and the first spawn's outcome is known. */
  ready(): void {
    if (this.deps.notifier === null) return;
    this.lastStatus = this.statusLine();
    this.deps.notifier.send(`${sdMessage.ready()}\n${sdMessage.status(this.lastStatus)}`);
  }

  reloading(): void {
    this.deps.notifier?.send(sdMessage.reloading(monotonicUsec()));
  }

  /** After a reload, whether it was applied or refused: the daemon runs on either way. */
  reloaded(): void {
    this.deps.notifier?.send(sdMessage.ready());
  }

  stopping(reason: string): void {
    this.deps.notifier?.send(`${sdMessage.stopping()}\n${sdMessage.status(`daemon stopping (${reason}): ending the worker tree`)}`);
  }

  private stop(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.statusDue !== null) clearImmediate(this.statusDue);
    this.statusDue = null;
  }

  private heard(r: LogRecord): void {
    const e = r.event;
    if (e === null || !STATUS_EVENTS.has(e.kind)) return;
    const action = actionOf(e);
    if (action !== null) this.action = describeAction(action);
    this.statusDue ??= setImmediate(() => {
      this.statusDue = null;
      const line = this.statusLine();
      this.action = null;
      if (line === this.lastStatus) return;
      this.lastStatus = line;
      this.deps.notifier?.send(sdMessage.status(line));
    });
  }

  private statusLine(): string {
    const { supervisor, memoryGuard } = this.deps;
    const w = supervisor.state;
    const m = memoryGuard.status();
    return formatServiceStatus({
      worker: {
        state: w.state, pid: w.pid, generation: w.generation, consecutiveFailures: w.consecutiveFailures,
        retryInMs: w.nextStartAtMs === null ? null : Math.max(0, w.nextStartAtMs - supervisor.clockMs()),
      },
      memory: m === null ? null : { level: m.level, availableBytes: m.available_bytes, treeRssBytes: m.tree_rss_bytes, treeSwapBytes: m.tree_swap_bytes, treeProcesses: m.tree_processes },
      action: this.action,
    });
  }
}

function actionOf(e: LogEvent): ServiceAction | null {
  switch (e.kind) {
    case 'memory-kill': return { kind: 'memory-kill', reason: e.reason, comm: e.comm, pid: e.pid, rssBytes: e.rssBytes, swapBytes: e.swapBytes };
    case 'memory-kill-escalated': return { kind: 'memory-kill-escalated', comm: e.comm, pid: e.pid };
    case 'memory-restart': return { kind: 'memory-restart', reason: e.reason, treeRssBytes: e.treeRssBytes, treeSwapBytes: e.treeSwapBytes, limitBytes: e.reason === 'tree_limit' ? e.limitBytes : null };
    // Crash restarts read as "worker backoff"; a health or OOM restart is an action of its own.
    case 'restart-scheduled': return e.cause === 'health' || e.cause === 'oom' ? { kind: 'restart', cause: e.cause } : null;
    // A recycle starts the next run at once: no restart is scheduled, so its own event says it.
    case 'health-recycle': return { kind: 'restart', cause: 'recycle' };
    default: return null;
  }
}
