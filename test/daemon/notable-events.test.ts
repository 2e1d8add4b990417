// Which log events become which notification (OccurrenceTracker), event by event: a failed streak
// is told once however many retries fail in it, a reset count starts a new streak, recovered only
// after failed, memory kills and restarts, health restarts with the last health verdict's figures,
// the exit-code policy's worker-held / restart-prevented, and daemon start and stop.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import type { LogEvent } from '../../src/log/events.js';
import { figuresOf, OccurrenceTracker, type Occurrence } from '../../src/daemon/notable-events.js';
import { projectName } from '../../src/daemon/notifier.js';

const failedAfter = (n: number): LogEvent => ({ kind: 'worker-failed', consecutiveFailures: n, lastExit: { code: 1, signal: null }, retryMs: 300_000 });
const scheduled = (cause: string, n: number): LogEvent => ({ kind: 'restart-scheduled', cause, delayMs: 300_000, consecutiveFailures: n });

/** The kinds the tracker made of `events`, in order (null where an event made none). */
function kindsOf(events: LogEvent[], tracker = new OccurrenceTracker()): Array<string | null> {
  return events.map((e) => tracker.heard(e, 'text')?.kind ?? null);
}

test('only the first worker-failed of a streak is `failed`; the retries that fail in it are not', () => {
  assert.deepEqual(kindsOf([scheduled('crash', 10), failedAfter(10), scheduled('crash', 11), failedAfter(11), failedAfter(12)]), [null, 'failed', null, null, null]);
});

test('a failure count that went down (an operator start forgave it) starts a new streak', () => {
  assert.deepEqual(kindsOf([failedAfter(10), failedAfter(11), failedAfter(10), failedAfter(11)]), ['failed', null, 'failed', null]);
});

test('recovered follows a stable run only after failed, and ends the streak', () => {
  const cleared: LogEvent = { kind: 'failures-cleared', previousFailures: 3 };
  assert.deepEqual(kindsOf([cleared, failedAfter(10), failedAfter(11), cleared, cleared, failedAfter(10)]), [null, 'failed', null, 'recovered', null, 'failed']);
});

test('failed carries the cause of the restart scheduled just before it, and the event figures in snake_case', () => {
  const tracker = new OccurrenceTracker();
  tracker.heard(scheduled('memory', 10), 'restarting');
  assert.deepEqual(tracker.heard(failedAfter(10), 'worker failed ...'), {
    kind: 'failed', message: 'worker failed ...', cause: 'memory',
    figures: { consecutive_failures: 10, last_exit: { code: 1, signal: null }, retry_ms: 300_000 },
  } satisfies Occurrence);
});

test('memory kills and memory restarts are `memory`, with the action and the figures', () => {
  const tracker = new OccurrenceTracker();
  const kill: LogEvent = { kind: 'memory-kill', pid: 42, comm: 'node', rssBytes: 900, swapBytes: 90, reason: 'critical', availableBytes: 100, thresholdBytes: 200, treeRssBytes: 1000, treeSwapBytes: 95 };
  assert.deepEqual(tracker.heard(kill, 'memory critical: sending SIGTERM to node'), {
    kind: 'memory', message: 'memory critical: sending SIGTERM to node', cause: 'memory',
    figures: { action: 'kill', pid: 42, comm: 'node', rss_bytes: 900, swap_bytes: 90, reason: 'critical', available_bytes: 100, threshold_bytes: 200, tree_rss_bytes: 1000, tree_swap_bytes: 95 },
  });
  const restart: LogEvent = { kind: 'memory-restart', reason: 'tree_limit', availableBytes: 5, treeBytes: 14, treeRssBytes: 6, treeSwapBytes: 8, limitBytes: 7 };
  assert.deepEqual(tracker.heard(restart, 'x')?.figures, { action: 'restart', reason: 'tree_limit', available_bytes: 5, tree_bytes: 14, tree_rss_bytes: 6, tree_swap_bytes: 8, limit_bytes: 7 });
  assert.deepEqual(kindsOf([{ kind: 'memory-kill-done', pid: 42, availableBefore: 1, availableAfter: 2, treeRssBefore: 3, treeRssAfter: 4, treeSwapBefore: 0, treeSwapAfter: 0 }, { kind: 'memory-verdict', level: 'low', verdict: 'low', availableBytes: 1, treeRssBytes: 2, treeSwapBytes: 0 }]), [null, null]);
});

test('a restart scheduled with cause oom (the kernel\'s OOM killer struck in the worker\'s leaf) is `memory`', () => {
  assert.deepEqual(new OccurrenceTracker().heard(scheduled('oom', 2), 'restarting worker in 300000 ms'), {
    kind: 'memory', message: 'restarting worker in 300000 ms', cause: 'oom', figures: { action: 'oom', delay_ms: 300_000, consecutive_failures: 2 },
  } satisfies Occurrence);
});

test('a restart scheduled with cause health is `health`, with the last health event\'s text and figures', () => {
  const tracker = new OccurrenceTracker();
  assert.equal(tracker.heard(scheduled('crash', 1), 'x'), null);
  // The health signals are another part of #17: any `health-*` event is taken as the verdict.
  const verdict = { kind: 'health-unhealthy', signal: 'stall', silentMs: 600_000 } as unknown as LogEvent;
  assert.equal(tracker.heard(verdict, 'unhealthy: stall'), null);
  assert.deepEqual(tracker.heard(scheduled('health', 2), 'restarting worker in 2000 ms'), {
    kind: 'health', message: 'unhealthy: stall', cause: 'health',
    figures: { signal: 'stall', silent_ms: 600_000, delay_ms: 300_000, consecutive_failures: 2 },
  });
  // The verdict is used once: a later health restart without one says only what the restart said.
  assert.deepEqual(tracker.heard(scheduled('health', 3), 'restarting'), {
    kind: 'health', message: 'restarting', cause: 'health', figures: { delay_ms: 300_000, consecutive_failures: 3 },
  });
});

test('worker-held and restart-prevented (the exit-code policy of #17) are held and prevented', () => {
  const tracker = new OccurrenceTracker();
  const held: LogEvent = { kind: 'worker-held', delayMs: 1_800_000, basis: 'hold_ms', consecutiveFailures: 0 };
  assert.deepEqual(tracker.heard(held, 'worker held'), { kind: 'held', message: 'worker held', cause: null, figures: { delay_ms: 1_800_000, basis: 'hold_ms', consecutive_failures: 0 } });
  const prevented: LogEvent = { kind: 'restart-prevented', code: 3 };
  assert.deepEqual(tracker.heard(prevented, 'x'), { kind: 'prevented', message: 'x', cause: null, figures: { code: 3 } });
});

test('daemon-start at daemon-ready; daemon-stop with the stop reason, and only after the daemon got ready', () => {
  const early = new OccurrenceTracker();
  early.heard({ kind: 'daemon-stopping', reason: 'SIGTERM' }, 'x');
  assert.equal(early.stopping(), null);

  const tracker = new OccurrenceTracker();
  assert.equal(tracker.heard({ kind: 'daemon-ready', socketPath: '/s' }, 'daemon ready socket=/s')?.kind, 'daemon-start');
  tracker.heard({ kind: 'daemon-stopping', reason: 'control request' }, 'daemon stopping reason="control request"');
  assert.deepEqual(tracker.stopping(), { kind: 'daemon-stop', message: 'daemon stopping reason="control request"', cause: null, figures: { reason: 'control request' } });
});

test('events that are not notable make nothing', () => {
  const quiet: LogEvent[] = [
    { kind: 'worker-spawned', generation: 1, pid: 2, argv: ['x'], cwd: '/' },
    { kind: 'worker-exited', generation: 1, pid: 2, code: 1, signal: null, uptimeMs: 5, tail: [] },
    { kind: 'worker-state', from: 'running', to: 'failed' },
    scheduled('crash', 1),
    scheduled('operator', 0),
    { kind: 'notify-failed', event: 'failed', reason: 'x' },
  ];
  assert.deepEqual(kindsOf(quiet), quiet.map(() => null));
});

test('figuresOf drops the kind and writes keys in snake_case, nested objects too', () => {
  assert.deepEqual(figuresOf({ kind: 'worker-failed', consecutiveFailures: 2, lastExit: null, retryMs: 1 }), { consecutive_failures: 2, last_exit: null, retry_ms: 1 });
});

test('the project is `project` when set, else the last component of working_dir', () => {
  const config = structuredClone(DEFAULTS) as Config;
  assert.equal(projectName({ ...config, working_dir: '/home/me/code/openagents' }), 'openagents');
  assert.equal(projectName({ ...config, working_dir: '/home/me/code/openagents', project: 'oa' }), 'oa');
});
