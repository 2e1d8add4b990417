// The restart delay schedule. Pure: it yields delays and never sleeps; the daemon arms the timer.
// Semantics: docs/supervision.md, "Backoff".

export interface BackoffSettings {
  initial_backoff_ms: number;
  max_backoff_ms: number;
  backoff_multiplier: number;
  max_consecutive_restarts: number;
  stable_after_ms: number;
}

/**
 * Delay before the next start after the n-th consecutive failure (n >= 1):
 * min(initial × multiplier^(n-1), max). Computed without overflowing to Infinity for large n.
 */
export function backoffDelayMs(consecutiveFailures: number, settings: BackoffSettings): number {
  const n = Math.max(1, Math.floor(consecutiveFailures));
  const { initial_backoff_ms: initial, max_backoff_ms: max, backoff_multiplier: factor } = settings;
  const delay = initial * Math.pow(factor, n - 1);
  return Number.isFinite(delay) ? Math.min(Math.round(delay), max) : max;
}

/** True when a run lasted long enough to count as stable, which clears the failure count. */
export function isStableRun(uptimeMs: number, settings: BackoffSettings): boolean {
  return uptimeMs >= settings.stable_after_ms;
}

/** True once the consecutive failures reach the budget: the worker is shown as failed. */
export function isFailureBudgetSpent(consecutiveFailures: number, settings: BackoffSettings): boolean {
  return consecutiveFailures >= settings.max_consecutive_restarts;
}
