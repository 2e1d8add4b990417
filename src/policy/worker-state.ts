// The worker state machine: one table of state × event, each cell a pure step that returns the
// next model and the effects the daemon must carry out (spawn, stop the tree, arm or cancel a timer).
// It reads no clock and arms no timer: `atMs` comes with every event.
// The table is documented in docs/supervision.md; test/policy/worker-state.test.ts checks they agree.

import { backoffDelayMs, isFailureBudgetSpent, isStableRun, type BackoffSettings } from './backoff.js';
import { holdDelay, type HoldBasis, type HoldRequest, type HoldSettings } from './hold-until.js';

export const WORKER_STATES = ['starting', 'running', 'backoff', 'stopping', 'stopped', 'failed', 'held'] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

/** Why a worker was (re)started. One name each, used in code, logs, status and docs. */
export const RESTART_CAUSES = ['crash', 'oom', 'memory', 'operator', 'health', 'hold', 'recycle'] as const;
export type RestartCause = (typeof RESTART_CAUSES)[number];

/** What the worker asked for by its own exit code: not to be restarted, or to be started later. */
export type ExitRequest = 'prevent' | 'hold';

export interface ExitRecord {
  code: number | null;
  signal: string | null;
  atMs: number;
  uptimeMs: number;
  /** Set only for an exit the worker made by itself with a code in prevent_exit_codes or hold_exit_codes. */
  asked: ExitRequest | null;
}

export type RestartCounts = Record<RestartCause, number> & { total: number };

export interface WorkerModel {
  state: WorkerState;
  /** What the operator wants, apart from what is: `down` after stop-worker or shutdown. */
  wanted: 'up' | 'down';
  /** Generation of the latest spawn; 0 before the first. */
  generation: number;
  pid: number | null;
  startedAtMs: number | null;
  consecutiveFailures: number;
  /** When the wait timer fires, while in backoff, failed or held. */
  nextStartAtMs: number | null;
  lastExit: ExitRecord | null;
  /** Set while stopping: what to do once the tree is gone (null: stay stopped, or hold). */
  pendingRestart: RestartCause | null;
  /** Set while stopping after a hold exit: the wait from that exit, started once the tree is gone. */
  pendingHold: { delayMs: number; basis: HoldBasis } | null;
  restarts: RestartCounts;
}

export type WorkerEvent =
  | { kind: 'start-requested'; atMs: number }
  | { kind: 'spawned'; atMs: number; pid: number }
  | { kind: 'spawn-failed'; atMs: number; reason: string }
  /**
   * `hold`: what the worker's hold file said at this exit (absent: nothing was read). `oomKilled`:
   * the kernel's OOM killer killed a process of the tree's cgroup during this run (cgroup backend
   * with the memory controller), so the exit is counted as `oom`, not `crash`.
   */
  | { kind: 'exited'; atMs: number; code: number | null; signal: string | null; hold?: HoldRequest; oomKilled?: boolean }
  | { kind: 'stable-elapsed'; atMs: number }
  | { kind: 'backoff-elapsed'; atMs: number }
  | { kind: 'stop-requested'; atMs: number }
  | { kind: 'restart-requested'; atMs: number; cause: RestartCause }
  | { kind: 'tree-gone'; atMs: number };

export type WorkerEventKind = WorkerEvent['kind'];
export const WORKER_EVENT_KINDS: readonly WorkerEventKind[] = [
  'start-requested', 'spawned', 'spawn-failed', 'exited', 'stable-elapsed',
  'backoff-elapsed', 'stop-requested', 'restart-requested', 'tree-gone',
];

export type TimerName = 'backoff' | 'stable';

export type WorkerEffect =
  | { kind: 'spawn'; generation: number }
  | { kind: 'stop-tree' }
  | { kind: 'arm-timer'; timer: TimerName; delayMs: number }
  | { kind: 'cancel-timer'; timer: TimerName }
  /** A restart was scheduled: for the log and counters. `failed` when the budget is spent. */
  | { kind: 'restart-scheduled'; cause: RestartCause; delayMs: number; consecutiveFailures: number; failed: boolean }
  | { kind: 'failures-cleared'; previousFailures: number }
  /** The worker exited with a prevent code: it stays stopped until an operator starts it. */
  | { kind: 'restart-prevented'; code: number }
  /** The worker exited with a hold code; `fallbackReason` says why its hold file was not used. */
  | { kind: 'hold-requested'; code: number; delayMs: number; basis: HoldBasis; fallbackReason: string | null }
  /** The tree of a held worker is gone: the wait runs, to end at the exit plus the hold's delay. */
  | { kind: 'hold-scheduled'; delayMs: number; basis: HoldBasis; consecutiveFailures: number }
  /** A cell the table says cannot happen; the daemon logs it and changes nothing. */
  | { kind: 'unexpected'; state: WorkerState; event: WorkerEventKind };

export interface WorkerPolicySettings extends BackoffSettings, HoldSettings {
  restart: 'always' | 'on-failure';
  prevent_exit_codes: readonly number[];
  hold_exit_codes: readonly number[];
}

export interface Step {
  model: WorkerModel;
  effects: WorkerEffect[];
}

export function initialWorkerModel(): WorkerModel {
  return {
    state: 'stopped',
    wanted: 'down',
    generation: 0,
    pid: null,
    startedAtMs: null,
    consecutiveFailures: 0,
    nextStartAtMs: null,
    lastExit: null,
    pendingRestart: null,
    pendingHold: null,
    restarts: { total: 0, crash: 0, oom: 0, memory: 0, operator: 0, health: 0, hold: 0, recycle: 0 },
  };
}

type Cell = (m: WorkerModel, e: never, s: WorkerPolicySettings) => Step;
type Row = { [K in WorkerEventKind]: Cell | 'ignore' | 'impossible' };

const same = (m: WorkerModel): Step => ({ model: m, effects: [] });

function spawnNext(m: WorkerModel, extra: WorkerEffect[] = []): Step {
  const generation = m.generation + 1;
  return {
    // startedAtMs is the new run's, set once it is spawned: an exit before that has no uptime.
    model: { ...m, state: 'starting', wanted: 'up', generation, pid: null, startedAtMs: null, nextStartAtMs: null, pendingRestart: null, pendingHold: null },
    effects: [...extra, { kind: 'spawn', generation }],
  };
}

/** An operator start: begins at once and forgives past failures. Counted as a restart only by the caller. */
function operatorStart(m: WorkerModel, extra: WorkerEffect[] = []): Step {
  return spawnNext({ ...m, consecutiveFailures: 0 }, extra);
}

/** Causes that count as a failure of the run (and so grow the backoff). */
export function isFailureCause(cause: RestartCause): boolean {
  return cause !== 'operator' && cause !== 'recycle' && cause !== 'hold';
}

function bump(r: RestartCounts, cause: RestartCause): RestartCounts {
  return { ...r, [cause]: r[cause] + 1, total: r.total + 1 };
}

/** Counts one failure; a stable run first clears the count, so its exit restarts after the initial delay. */
function countFailure(m: WorkerModel, runUptimeMs: number, s: WorkerPolicySettings): number {
  const base = isStableRun(runUptimeMs, s) ? 0 : m.consecutiveFailures;
  return base + 1;
}

/** Enter backoff (or failed, once the budget is spent) with the scheduled delay. */
function scheduleRestart(m: WorkerModel, cause: RestartCause, atMs: number, s: WorkerPolicySettings): Step {
  const failed = isFailureBudgetSpent(m.consecutiveFailures, s);
  const delayMs = failed ? s.max_backoff_ms : backoffDelayMs(m.consecutiveFailures, s);
  return {
    model: {
      ...m,
      state: failed ? 'failed' : 'backoff',
      pid: null,
      pendingRestart: null,
      nextStartAtMs: atMs + delayMs,
      restarts: bump(m.restarts, cause),
    },
    effects: [
      { kind: 'restart-scheduled', cause, delayMs, consecutiveFailures: m.consecutiveFailures, failed },
      { kind: 'arm-timer', timer: 'backoff', delayMs },
    ],
  };
}

function runUptime(m: WorkerModel, atMs: number): number {
  return m.startedAtMs === null ? 0 : Math.max(0, atMs - m.startedAtMs);
}

type ExitEvent = { atMs: number; code: number | null; signal: string | null; hold?: HoldRequest; oomKilled?: boolean };

function recordExit(m: WorkerModel, e: ExitEvent, asked: ExitRequest | null = null): WorkerModel {
  const lastExit = { code: e.code, signal: e.signal, atMs: e.atMs, uptimeMs: runUptime(m, e.atMs), asked };
  return { ...m, pid: null, lastExit };
}

/** What the worker's own exit code asks for; the lists are judged before restart = "on-failure". */
function exitRequest(code: number | null, s: WorkerPolicySettings): ExitRequest | null {
  if (code === null) return null;
  if (s.prevent_exit_codes.includes(code)) return 'prevent';
  if (s.hold_exit_codes.includes(code)) return 'hold';
  return null;
}

/**
 * The worker's main process exited by itself. Its children may live on: clear the tree before any
 * restart. A worker that is wanted down (a stop came while its spawn was in flight), exited with a
 * prevent code, or exited 0 under restart = "on-failure" stays down. A hold code is no failure:
 * the count is kept as it is (a stable run still clears it), so neither the backoff nor `failed`
 * comes nearer, and a worker in a crash loop is not forgiven by asking for a hold either. Any
 * other exit restarts as a failure: `oom` when the kernel's OOM killer hit the tree, else `crash`.
 */
function workerExited(m: WorkerModel, e: ExitEvent, s: WorkerPolicySettings): Step {
  const stopTree: WorkerEffect[] = [{ kind: 'cancel-timer', timer: 'stable' }, { kind: 'stop-tree' }];
  const asked = m.wanted === 'down' ? null : exitRequest(e.code, s);
  const exited = recordExit(m, e, asked);
  const uptimeMs = exited.lastExit!.uptimeMs;
  if (asked === 'prevent') {
    return {
      model: { ...exited, state: 'stopping', wanted: 'down', pendingRestart: null, pendingHold: null },
      effects: [{ kind: 'restart-prevented', code: e.code! }, ...stopTree],
    };
  }
  if (asked === 'hold') {
    const hold = holdDelay(e.hold ?? { kind: 'none' }, s);
    const failures = isStableRun(uptimeMs, s) ? 0 : m.consecutiveFailures;
    return {
      model: { ...exited, state: 'stopping', pendingRestart: null, pendingHold: { delayMs: hold.delayMs, basis: hold.basis }, consecutiveFailures: failures },
      effects: [{ kind: 'hold-requested', code: e.code!, delayMs: hold.delayMs, basis: hold.basis, fallbackReason: hold.fallbackReason }, ...stopTree],
    };
  }
  const staysDown = m.wanted === 'down' || (s.restart === 'on-failure' && e.code === 0);
  const model: WorkerModel = staysDown
    ? { ...exited, state: 'stopping', wanted: 'down', pendingRestart: null }
    : { ...exited, state: 'stopping', pendingRestart: e.oomKilled === true ? 'oom' : 'crash', consecutiveFailures: countFailure(m, uptimeMs, s) };
  return { model, effects: stopTree };
}

/** The held worker's tree is gone: wait until its exit plus the hold's delay (at once if that is past). */
function enterHold(m: WorkerModel, hold: { delayMs: number; basis: HoldBasis }, atMs: number): Step {
  const endsAtMs = Math.max(atMs, (m.lastExit?.atMs ?? atMs) + hold.delayMs);
  const delayMs = endsAtMs - atMs;
  return {
    model: { ...m, state: 'held', pid: null, pendingRestart: null, pendingHold: null, nextStartAtMs: endsAtMs, restarts: bump(m.restarts, 'hold') },
    effects: [
      { kind: 'hold-scheduled', delayMs, basis: hold.basis, consecutiveFailures: m.consecutiveFailures },
      { kind: 'arm-timer', timer: 'backoff', delayMs },
    ],
  };
}

const stoppingForStop = (m: WorkerModel): Step => ({
  model: { ...m, state: 'stopping', wanted: 'down', pendingRestart: null, pendingHold: null },
  effects: [{ kind: 'cancel-timer', timer: 'stable' }, { kind: 'stop-tree' }],
});

const backingOff = (m: WorkerModel, e: WorkerEvent & { kind: 'stop-requested' | 'start-requested' }): Step =>
  e.kind === 'stop-requested'
    ? { model: { ...m, state: 'stopped', wanted: 'down', nextStartAtMs: null }, effects: [{ kind: 'cancel-timer', timer: 'backoff' }] }
    : operatorStart(m, [{ kind: 'cancel-timer', timer: 'backoff' }]);

const waitingRow: Row = {
  'start-requested': backingOff as Cell,
  spawned: 'impossible',
  'spawn-failed': 'impossible',
  exited: 'impossible',
  'stable-elapsed': 'ignore',
  'backoff-elapsed': ((m: WorkerModel) => spawnNext(m)) as Cell,
  'stop-requested': backingOff as Cell,
  // An operator restart skips the wait; it is counted, as restart-worker always is.
  'restart-requested': ((m: WorkerModel, e: { cause: RestartCause }) =>
    e.cause === 'operator'
      ? operatorStart({ ...m, restarts: bump(m.restarts, 'operator') }, [{ kind: 'cancel-timer', timer: 'backoff' }])
      : same(m)) as Cell,
  'tree-gone': 'impossible',
};

export const TRANSITIONS: Record<WorkerState, Row> = {
  stopped: {
    'start-requested': ((m: WorkerModel) => operatorStart(m)) as Cell,
    spawned: 'impossible',
    'spawn-failed': 'impossible',
    exited: 'impossible',
    'stable-elapsed': 'ignore',
    'backoff-elapsed': 'ignore',
    'stop-requested': 'ignore',
    'restart-requested': ((m: WorkerModel, e: { cause: RestartCause }) =>
      e.cause === 'operator' ? operatorStart(m) : same(m)) as Cell,
    'tree-gone': 'impossible',
  },
  starting: {
    // The spawn is in flight; a stop asked now is honoured once the spawn outcome is known.
    'start-requested': 'ignore',
    spawned: ((m: WorkerModel, e: { atMs: number; pid: number }, s: WorkerPolicySettings) => {
      const started = { ...m, pid: e.pid, startedAtMs: e.atMs };
      if (m.wanted === 'down') return stoppingForStop(started);
      return { model: { ...started, state: 'running' }, effects: [{ kind: 'arm-timer', timer: 'stable', delayMs: s.stable_after_ms }] };
    }) as Cell,
    'spawn-failed': ((m: WorkerModel, e: { atMs: number }, s: WorkerPolicySettings) => {
      if (m.wanted === 'down') return same({ ...m, state: 'stopped', pid: null });
      return scheduleRestart({ ...m, consecutiveFailures: countFailure(m, 0, s) }, 'crash', e.atMs, s);
    }) as Cell,
    // The worker ran but its spawn was never reported (the daemon failed while handling it):
    // handled as an exit with no known uptime, so a stop in flight still clears its tree (#15).
    exited: workerExited as Cell,
    'stable-elapsed': 'ignore',
    'backoff-elapsed': 'ignore',
    'stop-requested': ((m: WorkerModel) => same({ ...m, wanted: 'down', pendingRestart: null })) as Cell,
    'restart-requested': 'ignore',
    'tree-gone': 'impossible',
  },
  running: {
    'start-requested': 'ignore',
    spawned: 'impossible',
    'spawn-failed': 'impossible',
    exited: workerExited as Cell,
    'stable-elapsed': ((m: WorkerModel) =>
      m.consecutiveFailures === 0
        ? same(m)
        : { model: { ...m, consecutiveFailures: 0 }, effects: [{ kind: 'failures-cleared', previousFailures: m.consecutiveFailures }] }) as Cell,
    'backoff-elapsed': 'ignore',
    'stop-requested': ((m: WorkerModel) => stoppingForStop(m)) as Cell,
    'restart-requested': ((m: WorkerModel, e: { atMs: number; cause: RestartCause }, s: WorkerPolicySettings) => {
      // Memory and health restarts spend the failure budget, so a worker that leaks on start cannot loop at full speed.
      // A recycle (max_uptime_ms) is planned, not a failure: it leaves the count as it is.
      const failures = isFailureCause(e.cause) ? countFailure(m, runUptime(m, e.atMs), s) : m.consecutiveFailures;
      return {
        model: { ...m, state: 'stopping', pendingRestart: e.cause, consecutiveFailures: failures },
        effects: [{ kind: 'cancel-timer', timer: 'stable' }, { kind: 'stop-tree' }],
      };
    }) as Cell,
    'tree-gone': 'impossible',
  },
  stopping: {
    'start-requested': ((m: WorkerModel) =>
      same({ ...m, wanted: 'up', pendingRestart: m.pendingRestart ?? 'operator' })) as Cell,
    spawned: 'impossible',
    'spawn-failed': 'impossible',
    exited: ((m: WorkerModel, e: ExitEvent) => same(recordExit(m, e))) as Cell,
    'stable-elapsed': 'ignore',
    'backoff-elapsed': 'ignore',
    'stop-requested': ((m: WorkerModel) => same({ ...m, wanted: 'down', pendingRestart: null, pendingHold: null })) as Cell,
    'restart-requested': ((m: WorkerModel, e: { cause: RestartCause }) =>
      e.cause === 'operator' ? same({ ...m, wanted: 'up', pendingRestart: 'operator' }) : same(m)) as Cell,
    'tree-gone': ((m: WorkerModel, e: { atMs: number }, s: WorkerPolicySettings) => {
      const gone = { ...m, pid: null };
      // A pending restart (an operator's start or restart came meanwhile) goes before a hold.
      if (m.pendingRestart === null && m.pendingHold !== null) return enterHold(gone, m.pendingHold, e.atMs);
      if (m.pendingRestart === null) return same({ ...gone, state: 'stopped', wanted: 'down' });
      if (m.pendingRestart === 'operator') return operatorStart({ ...gone, restarts: bump(gone.restarts, 'operator') });
      // A recycle starts the next run at once, with no backoff and the failure count untouched.
      if (m.pendingRestart === 'recycle') return spawnNext({ ...gone, restarts: bump(gone.restarts, 'recycle') });
      return scheduleRestart(gone, m.pendingRestart, e.atMs, s);
    }) as Cell,
  },
  backoff: waitingRow,
  failed: waitingRow,
  // The hold's end is the wait timer too: the same row, so start-worker and restart-worker end it at once.
  held: waitingRow,
};

/** The one entry point: applies `event` to `model`. */
export function stepWorker(model: WorkerModel, event: WorkerEvent, settings: WorkerPolicySettings): Step {
  const cell = TRANSITIONS[model.state][event.kind];
  if (cell === 'ignore') return same(model);
  if (cell === 'impossible') return { model, effects: [{ kind: 'unexpected', state: model.state, event: event.kind }] };
  return (cell as (m: WorkerModel, e: WorkerEvent, s: WorkerPolicySettings) => Step)(model, event, settings);
}
