// Which of the log's events are notable, and as what kind (docs/supervision.md "Notifications",
// the table of kinds): a log event says what happened; some kinds also need what came before it
// (a failed streak, the cause of the restart just scheduled, the last health verdict).

import type { LogEvent } from '../log/events.js';

/** What happened, before the policy decides whether it is sent. */
export interface Occurrence {
  kind: string;
  message: string;
  cause: string | null;
  figures: Record<string, unknown> | null;
}

/**
 * Turns log events into occurrences. Keeps what a single event does not say: whether the worker is
 * in a failed streak (`worker-failed` comes again at every retry while failed; only the first of a
 * streak is `failed`), the cause of the restart just scheduled, the last health verdict and the
 * reason the daemon stops.
 */
export class OccurrenceTracker {
  /** consecutiveFailures of the last `worker-failed`, while the streak lasts; null when not failed. */
  private failedAt: number | null = null;
  private lastRestartCause: string | null = null;
  private lastHealth: { message: string; figures: Record<string, unknown> } | null = null;
  private stopAsked: { reason: string; message: string } | null = null;
  private ready = false;

  heard(event: LogEvent, message: string): Occurrence | null {
    if (event.kind === 'worker-held' || event.kind === 'restart-prevented') {
      return { kind: event.kind === 'worker-held' ? 'held' : 'prevented', message, cause: null, figures: figuresOf(event) };
    }
    // The health verdicts (health-*) carry the signal's figures for the health restart that follows.
    const kind = event.kind as string;
    if (kind.startsWith('health-')) {
      this.lastHealth = { message, figures: figuresOf(event) };
      return null;
    }
    switch (event.kind) {
      case 'daemon-ready':
        this.ready = true;
        return { kind: 'daemon-start', message, cause: null, figures: null };
      case 'daemon-stopping':
        this.stopAsked = { reason: event.reason, message };
        return null;
      case 'restart-scheduled': {
        this.lastRestartCause = event.cause;
        // The kernel's OOM killer struck in the worker's cgroup leaf (issue #18): a memory matter.
        if (event.cause === 'oom') {
          return { kind: 'memory', message, cause: 'oom', figures: { action: 'oom', delay_ms: event.delayMs, consecutive_failures: event.consecutiveFailures } };
        }
        if (event.cause !== 'health') return null;
        const health = this.lastHealth;
        this.lastHealth = null;
        return {
          kind: 'health', message: health?.message ?? message, cause: 'health',
          figures: { ...health?.figures, delay_ms: event.delayMs, consecutive_failures: event.consecutiveFailures },
        };
      }
      case 'worker-failed': {
        // While failed, each retry fails with one more; a count not above the last means the count
        // was reset meanwhile (an operator start), so this is a new streak.
        const isNewStreak = this.failedAt === null || event.consecutiveFailures <= this.failedAt;
        this.failedAt = event.consecutiveFailures;
        if (!isNewStreak) return null;
        return { kind: 'failed', message, cause: this.lastRestartCause, figures: figuresOf(event) };
      }
      case 'failures-cleared': {
        const wasFailed = this.failedAt !== null;
        this.failedAt = null;
        return wasFailed ? { kind: 'recovered', message, cause: null, figures: figuresOf(event) } : null;
      }
      case 'memory-kill':
        return { kind: 'memory', message, cause: 'memory', figures: { action: 'kill', ...figuresOf(event) } };
      case 'memory-restart':
        return { kind: 'memory', message, cause: 'memory', figures: { action: 'restart', ...figuresOf(event) } };
      default:
        return null;
    }
  }

  /** The daemon-stop occurrence, or null when the daemon never got ready (a failed start says so itself). */
  stopping(): Occurrence | null {
    if (!this.ready) return null;
    const { reason, message } = this.stopAsked ?? { reason: 'unknown', message: 'daemon stopping' };
    return { kind: 'daemon-stop', message, cause: null, figures: { reason } };
  }
}

/** An event's own fields, snake_case as in `status`, without its kind. */
export function figuresOf(event: LogEvent): Record<string, unknown> {
  const figures: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key === 'kind') continue;
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    figures[snake] = value !== null && typeof value === 'object' && !Array.isArray(value) ? figuresOf(value as LogEvent) : value;
  }
  return figures;
}
