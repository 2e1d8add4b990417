// The memory guard's decisions. The daemon calls stepMemoryGuard once per memory sample and once per
// finished action; it gets back the next state, the level, a verdict to log when it changes, at most
// one action to carry out, and when to sample next. Like systemd-oomd, it acts only when two
// consecutive readings agree, handles one victim at a time, and after each action gives the kernel a
// cooldown to reclaim before it judges system memory again (the tree limit is not held: see decide).

import { classifyMemoryLevel, isAtLeast, lesserMemoryLevel } from './memory-level.js';
import type { MemoryLevel, MemoryLevelConfig } from './memory-level.js';
import { treeFigureBytes } from './memory-sample.js';
import type { MemorySample } from './memory-sample.js';
import { pickVictim } from './memory-victim.js';
import type { MemoryVictimConfig } from './memory-victim.js';
import { POLL_FLOOR_MS, SETTLED_POLL_MS, nextPollIntervalMs } from './poll-interval.js';
import type { PollIntervalConfig, PollPoint } from './poll-interval.js';

/**
 * While the tree is being stopped (asked to exit, within its grace), it may keep growing: a leak
 * does not pause for SIGTERM, and a busy process may take seconds to get to its handler (#15:
 * decided at 304 MiB, still at 484 MiB when the worker handled SIGTERM 7 s later). Past the limit
 * by this factor the grace ends and SIGKILL follows.
 */
export const TREE_STOP_KILL_FACTOR = 1.25;

/** The tree RSS above which a stop's grace ends (null: no `worker_max_bytes`, no such bound). */
export function treeStopKillAboveBytes(workerMaxBytes: number | null): number | null {
  return workerMaxBytes === null ? null : Math.floor(workerMaxBytes * TREE_STOP_KILL_FACTOR);
}

/** The `[memory]` keys the guard reads; the full MemoryConfig satisfies it. */
export interface MemoryGuardConfig extends MemoryLevelConfig, MemoryVictimConfig, PollIntervalConfig {
  kill_grace_ms: number;
  cooldown_ms: number;
}

export interface KillAction {
  kind: 'kill';
  pid: number;
  comm: string;
  rssBytes: number;
  reason: 'low' | 'critical';
  /** SIGTERM first; SIGKILL if the process is still there after this long. */
  graceMs: number;
  availableBytes: number;
}

export interface RestartWorkerAction {
  kind: 'restart-worker';
  cause: 'memory';
  reason: 'critical' | 'tree_limit';
  treeRssBytes: number;
  availableBytes: number;
}

export type MemoryAction = KillAction | RestartWorkerAction;

export type MemoryGuardEvent =
  | { kind: 'kill-finished'; atMs: number; pid: number }
  | { kind: 'restart-finished'; atMs: number };

/** A sample (which has no `kind`) or a report that an action finished. */
export type MemoryGuardInput = MemorySample | MemoryGuardEvent;

/** Log-worthy summary of a step; the daemon logs it when it differs from the previous one. */
export type MemoryVerdict =
  | 'ok'
  | 'low-awaiting-confirmation'
  | 'critical-awaiting-confirmation'
  | 'tree-limit-awaiting-confirmation'
  | 'low-nothing-to-kill'
  /** A low or critical action is due but held back until cooldownUntilMs (never the tree limit). */
  | 'cooldown'
  | 'kill'
  | 'restart'
  | 'kill-in-flight'
  | 'restart-in-flight'
  | 'kill-finished'
  | 'restart-finished'
  /** A finished event that matches no action in flight; ignored. */
  | 'unexpected-event';

export type MemoryActionInFlight =
  | { kind: 'kill'; pid: number; sinceMs: number }
  | { kind: 'restart-worker'; sinceMs: number };

/** For `status`. A restart has no victim: pid and comm are null and rssBytes is the tree's. */
export interface LastMemoryAction {
  kind: 'kill' | 'restart-worker';
  reason: 'low' | 'critical' | 'tree_limit';
  pid: number | null;
  comm: string | null;
  rssBytes: number;
  atMs: number;
  finishedAtMs: number | null;
}

interface Reading {
  level: MemoryLevel;
  treeOverLimit: boolean;
}

export interface MemoryGuardState {
  /** Level of the latest sample; null before the first. */
  readonly lastLevel: MemoryLevel | null;
  readonly lastVerdict: MemoryVerdict | null;
  /** For hysteresis. Cleared when an action finishes, so two fresh readings are needed again. */
  readonly previousReading: Reading | null;
  /** For growth rates in the poll interval. */
  readonly previousPoint: PollPoint | null;
  readonly inFlight: MemoryActionInFlight | null;
  /** No low or critical action before this time (monotonic ms); null when no action has finished yet. */
  readonly cooldownUntilMs: number | null;
  readonly lastAction: LastMemoryAction | null;
}

export interface MemoryGuardStep {
  state: MemoryGuardState;
  level: MemoryLevel | null;
  verdict: MemoryVerdict;
  action: MemoryAction | null;
  nextPollMs: number;
}

export function initialMemoryGuardState(): MemoryGuardState {
  return {
    lastLevel: null,
    lastVerdict: null,
    previousReading: null,
    previousPoint: null,
    inFlight: null,
    cooldownUntilMs: null,
    lastAction: null,
  };
}

export function stepMemoryGuard(
  state: MemoryGuardState,
  input: MemoryGuardInput,
  config: MemoryGuardConfig,
): MemoryGuardStep {
  return 'kind' in input ? stepEvent(state, input, config) : stepSample(state, input, config);
}

function stepEvent(
  state: MemoryGuardState,
  event: MemoryGuardEvent,
  config: MemoryGuardConfig,
): MemoryGuardStep {
  const inFlight = state.inFlight;
  const matches =
    inFlight !== null &&
    (event.kind === 'kill-finished'
      ? inFlight.kind === 'kill' && inFlight.pid === event.pid
      : inFlight.kind === 'restart-worker');
  // Sample again soon either way: after an action, memory must be read before choosing the next.
  const nextPollMs = Math.min(POLL_FLOOR_MS, config.poll_interval_ms);
  if (!matches) {
    const verdict: MemoryVerdict = 'unexpected-event';
    const next: MemoryGuardState = { ...state, lastVerdict: verdict };
    return { state: next, level: state.lastLevel, verdict, action: null, nextPollMs };
  }
  const verdict = event.kind;
  const next: MemoryGuardState = {
    ...state,
    lastVerdict: verdict,
    previousReading: null,
    inFlight: null,
    cooldownUntilMs: event.atMs + config.cooldown_ms,
    lastAction: state.lastAction === null ? null : { ...state.lastAction, finishedAtMs: event.atMs },
  };
  return { state: next, level: state.lastLevel, verdict, action: null, nextPollMs };
}

function stepSample(
  state: MemoryGuardState,
  sample: MemorySample,
  config: MemoryGuardConfig,
): MemoryGuardStep {
  const level = classifyMemoryLevel(sample, config);
  const point: PollPoint = {
    atMs: sample.atMs,
    availableBytes: sample.availableBytes,
    treeRssBytes: treeFigureBytes(sample),
  };
  const reading: Reading = {
    level,
    treeOverLimit: config.worker_max_bytes !== null && point.treeRssBytes > config.worker_max_bytes,
  };
  const { verdict, action } = decide(state, sample, point, reading, config);

  let next: MemoryGuardState = {
    ...state,
    lastLevel: level,
    lastVerdict: verdict,
    previousReading: reading,
    previousPoint: point,
  };
  if (action !== null) next = recordAction(next, action, sample.atMs);

  const nextPollMs = pollAfter(verdict, level, reading, next, point, state.previousPoint, config, sample.atMs);
  return { state: next, level, verdict, action, nextPollMs };
}

/**
 * At the floor while something is about to happen (an action in flight, a condition waiting for its
 * second reading). A settled verdict — low with nothing to kill, or an action held by the cooldown —
 * can last hours on a small machine; there a scan every 100 ms would cost a tenth of a core for
 * nothing, so the guard looks every SETTLED_POLL_MS, sooner only as the next threshold down (critical,
 * or the tree limit) or the end of the cooldown approaches.
 */
function pollAfter(
  verdict: MemoryVerdict,
  level: MemoryLevel,
  reading: Reading,
  next: MemoryGuardState,
  point: PollPoint,
  previousPoint: PollPoint | null,
  config: MemoryGuardConfig,
  atMs: number,
): number {
  const floorMs = Math.min(POLL_FLOOR_MS, config.poll_interval_ms);
  if (next.inFlight !== null) return floorMs;
  if (verdict === 'low-nothing-to-kill' || verdict === 'cooldown') {
    const towardCritical = nextPollIntervalMs(point, previousPoint, {
      ...config,
      poll_interval_ms: Math.min(SETTLED_POLL_MS, config.poll_interval_ms),
      min_available_bytes: config.critical_threshold_bytes,
      // Over the limit already, the tree side has nothing further to approach.
      worker_max_bytes: reading.treeOverLimit ? null : config.worker_max_bytes,
    });
    const cooldownLeftMs = next.cooldownUntilMs === null ? Infinity : next.cooldownUntilMs - atMs;
    return Math.max(floorMs, Math.min(towardCritical, cooldownLeftMs));
  }
  const atThreshold = level !== 'ok' || reading.treeOverLimit;
  return atThreshold ? floorMs : nextPollIntervalMs(point, previousPoint, config);
}

/**
 * Order: an action in flight blocks everything; then among conditions confirmed by two readings,
 * critical beats the tree limit, which beats low (restarting a tree over its limit does more good
 * than killing one process of it). Each condition needs its own two readings.
 *
 * The cooldown holds back only the system-memory actions (low and critical: kills, and the restart
 * when nothing is left to kill). Those judge MemAvailable and PSI, which lag behind an action while
 * the kernel reclaims. The tree limit is never held: the tree's RSS is measured exactly, and after a
 * restart it is a new generation's, a new subject. Holding it let every relapse grow for the whole
 * cooldown (#15: restarted at 599-643 MiB against a 300 MiB limit).
 */
function decide(
  state: MemoryGuardState,
  sample: MemorySample,
  point: PollPoint,
  reading: Reading,
  config: MemoryGuardConfig,
): { verdict: MemoryVerdict; action: MemoryAction | null } {
  if (state.inFlight !== null) {
    const verdict = state.inFlight.kind === 'kill' ? 'kill-in-flight' : 'restart-in-flight';
    return { verdict, action: null };
  }
  if (reading.level === 'ok' && !reading.treeOverLimit) return { verdict: 'ok', action: null };

  const previous = state.previousReading;
  const confirmedLevel = previous === null ? 'ok' : lesserMemoryLevel(previous.level, reading.level);
  const confirmedTreeOverLimit = previous !== null && previous.treeOverLimit && reading.treeOverLimit;
  const coolingDown = state.cooldownUntilMs !== null && sample.atMs < state.cooldownUntilMs;
  const act = (action: MemoryAction): { verdict: MemoryVerdict; action: MemoryAction } =>
    ({ verdict: action.kind === 'kill' ? 'kill' : 'restart', action });

  const system = systemAction(confirmedLevel, sample, point, config);
  if (system !== null && system.reason === 'critical' && !coolingDown) return act(system);
  if (confirmedTreeOverLimit) return act(restartAction('tree_limit', sample, point));
  if (system !== null && !coolingDown) return act(system);
  // Nothing to do yet. A system action held by the cooldown, unless the tree limit may act first.
  if (system !== null) return { verdict: reading.treeOverLimit ? 'tree-limit-awaiting-confirmation' : 'cooldown', action: null };
  // Otherwise the most severe condition still waiting for its second reading.
  if (reading.level === 'critical') return { verdict: 'critical-awaiting-confirmation', action: null };
  if (reading.treeOverLimit) return { verdict: 'tree-limit-awaiting-confirmation', action: null };
  if (confirmedLevel === 'ok') return { verdict: 'low-awaiting-confirmation', action: null };
  return { verdict: 'low-nothing-to-kill', action: null };
}

/** What a confirmed low or critical level calls for: a victim, or for critical without one, a restart. */
function systemAction(
  confirmedLevel: MemoryLevel,
  sample: MemorySample,
  point: PollPoint,
  config: MemoryGuardConfig,
): KillAction | RestartWorkerAction | null {
  const kill = (reason: KillAction['reason']): KillAction | null => {
    const victim = pickVictim(sample.tree, sample.extraCandidates, config);
    if (victim === null) return null;
    const { availableBytes } = sample;
    return { kind: 'kill', ...victim, reason, graceMs: config.kill_grace_ms, availableBytes };
  };
  if (confirmedLevel === 'critical') return kill('critical') ?? restartAction('critical', sample, point);
  if (isAtLeast(confirmedLevel, 'low')) return kill('low');
  return null;
}

function restartAction(reason: RestartWorkerAction['reason'], sample: MemorySample, point: PollPoint): RestartWorkerAction {
  return { kind: 'restart-worker', cause: 'memory', reason, treeRssBytes: point.treeRssBytes, availableBytes: sample.availableBytes };
}

function recordAction(state: MemoryGuardState, action: MemoryAction, atMs: number): MemoryGuardState {
  if (action.kind === 'kill') {
    return {
      ...state,
      inFlight: { kind: 'kill', pid: action.pid, sinceMs: atMs },
      lastAction: {
        kind: 'kill',
        reason: action.reason,
        pid: action.pid,
        comm: action.comm,
        rssBytes: action.rssBytes,
        atMs,
        finishedAtMs: null,
      },
    };
  }
  return {
    ...state,
    inFlight: { kind: 'restart-worker', sinceMs: atMs },
    lastAction: {
      kind: 'restart-worker',
      reason: action.reason,
      pid: null,
      comm: null,
      rssBytes: action.treeRssBytes,
      atMs,
      finishedAtMs: null,
    },
  };
}
