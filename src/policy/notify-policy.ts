// When a notification's command runs (issue #17, docs/supervision.md "Notifications"): per kind,
// one command at a time and at most one per `min_interval_ms`; what is left out is counted and the
// next command that runs for that kind is told (`suppressed: N`). A crash loop at full speed must
// not become a command per second, nor a pile of commands waiting on a dead webhook.
// Pure: `atMs` (monotonic) comes with every event; the daemon runs the command and tells `finished`.

export interface NotifySettings {
  /** The kinds that are sent at all; others are dropped without being counted. */
  events: readonly string[];
  min_interval_ms: number;
}

export interface NotifyKindState {
  running: boolean;
  /** When the last command for this kind was started; null before the first. */
  lastRunAtMs: number | null;
  /** Left out since the last command that ran. */
  suppressed: number;
}

export type NotifyState = Readonly<Record<string, NotifyKindState>>;

export type NotifyInput =
  | { kind: 'occurred'; notifyKind: string; atMs: number }
  | { kind: 'finished'; notifyKind: string; atMs: number };

export type NotifyEffect =
  /** Run the command for this kind now, telling it how many were left out before it. */
  | { kind: 'run'; notifyKind: string; suppressed: number }
  /** Left out: one is still running, or the last ran less than min_interval_ms ago. */
  | { kind: 'suppressed'; notifyKind: string; reason: 'running' | 'rate-limited'; suppressed: number }
  /** `finished` for a kind with no command running: the daemon logs it and nothing changes. */
  | { kind: 'unexpected'; message: string };

export interface NotifyStep {
  state: NotifyState;
  effects: NotifyEffect[];
}

export function initialNotifyState(): NotifyState {
  return {};
}

const IDLE: NotifyKindState = { running: false, lastRunAtMs: null, suppressed: 0 };

export function stepNotify(state: NotifyState, input: NotifyInput, settings: NotifySettings): NotifyStep {
  const name = input.notifyKind;
  const current = state[name] ?? IDLE;
  const set = (next: NotifyKindState): NotifyState => ({ ...state, [name]: next });
  if (input.kind === 'finished') {
    if (!current.running) return { state, effects: [{ kind: 'unexpected', message: `notify command for ${name} finished, but none was running` }] };
    return { state: set({ ...current, running: false }), effects: [] };
  }
  if (!settings.events.includes(name)) return { state, effects: [] };
  const reason = current.running ? 'running' : isTooSoon(current, input.atMs, settings) ? 'rate-limited' : null;
  if (reason !== null) {
    const suppressed = current.suppressed + 1;
    return { state: set({ ...current, suppressed }), effects: [{ kind: 'suppressed', notifyKind: name, reason, suppressed }] };
  }
  return {
    state: set({ running: true, lastRunAtMs: input.atMs, suppressed: 0 }),
    effects: [{ kind: 'run', notifyKind: name, suppressed: current.suppressed }],
  };
}

function isTooSoon(current: NotifyKindState, atMs: number, settings: NotifySettings): boolean {
  return current.lastRunAtMs !== null && atMs - current.lastRunAtMs < settings.min_interval_ms;
}
