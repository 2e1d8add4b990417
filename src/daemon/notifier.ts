// Notifications (issue #17, README "Notifications", docs/supervision.md "Notifications"): hears the
// log's events, as service-notify.ts does for STATUS, turns the notable ones into a kind (`failed`,
// `recovered`, `memory`, `health`, `held`, `prevented`, `daemon-start`, `daemon-stop`), asks the
// policy (src/policy/notify-policy.ts) whether to run the command now, and runs it through
// src/os/notify-command.ts. Nothing here is awaited by supervision: a hung command costs its own
// kind its next messages (counted as suppressed), and nothing else, until its timeout kills it.

import { hostname } from 'node:os';
import { basename } from 'node:path';
import { monotonicMs } from '../os/monotonic-clock.js';
import type { Config } from '../config/types.js';
import type { WorkerStatus } from '../control/protocol.js';
import type { Logger, LogRecord } from '../log/logger.js';
import { isoTime } from '../log/iso-time.js';
import { runNotifyCommand, type NotifyResult } from '../os/notify-command.js';
import type { ProcTable } from '../os/proc-table.js';
import { initialNotifyState, stepNotify, type NotifyEffect, type NotifyState } from '../policy/notify-policy.js';
import { DAEMON_ONLY_ENV } from './worker-supervisor.js';
import { OccurrenceTracker, type Occurrence } from './notable-events.js';

/** At shutdown, how long past notify.timeout_ms the daemon waits for commands whose tree stop has not ended. */
export const NOTIFY_STOP_MARGIN_MS = 5_000;

/** The JSON object on the command's stdin (one line). Field names are a contract: README "Notifications". */
export interface NotifyPayload {
  event: string;
  time: string;
  host: string;
  project: string;
  daemon_pid: number;
  /** The daemon's log line for what happened. */
  message: string;
  cause: string | null;
  figures: Record<string, unknown> | null;
  suppressed: number;
  /** As `status` shows it at the event (last_exit, with its tail where status has one). */
  worker: WorkerStatus;
}


export interface NotifierDeps {
  /** The configuration now: a reload changes command, events and limits for the next event. */
  config: () => Config;
  logger: Logger;
  table: ProcTable;
  uid: number;
  protectedPids: () => ReadonlySet<number>;
  instanceId: string;
  workerStatus: () => WorkerStatus;
  /** Monotonic ms, for the rate limit. */
  now?: () => number;
  /** Wall-clock ms, for the payload's time. */
  wallNow?: () => number;
}


/** What the payload names the project: `project` if set, else working_dir's last component. */
export function projectName(config: Config): string {
  return config.project ?? basename(config.working_dir);
}

export class Notifier {
  private state: NotifyState = initialNotifyState();
  private readonly tracker = new OccurrenceTracker();
  private readonly inFlight = new Set<Promise<void>>();
  private unsubscribe: (() => void) | null = null;
  private runs = 0;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly host = hostname();

  constructor(private readonly deps: NotifierDeps) {
    this.now = deps.now ?? (() => Math.round(monotonicMs()));
    this.wallNow = deps.wallNow ?? Date.now;
  }

  /** Starts listening; the undo sends daemon-stop and waits for every command still running (each at most its timeout). */
  start(): () => Promise<void> {
    this.unsubscribe = this.deps.logger.subscribe((r) => this.heard(r));
    return () => this.stop();
  }

  private async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    const occurrence = this.tracker.stopping();
    if (occurrence !== null) this.occurred(occurrence);
    const drained = (async () => {
      while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    })().catch((err: Error) => this.deps.logger.emit({ kind: 'internal-error', message: `notify command: ${err.stack ?? err.message}` }));
    // Each run ends by its timeout, its tree stop included; this bounds a root stuck past SIGKILL.
    let timer: NodeJS.Timeout | undefined;
    const waitMs = this.deps.config().notify.timeout_ms + NOTIFY_STOP_MARGIN_MS;
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  private heard(r: LogRecord): void {
    if (r.event === null || r.event.kind.startsWith('notify-')) return;
    const occurrence = this.tracker.heard(r.event, r.text);
    if (occurrence !== null) this.occurred(occurrence);
  }

  private occurred(occurrence: Occurrence): void {
    const config = this.deps.config();
    if (config.notify.command === null) return;
    const step = stepNotify(this.state, { kind: 'occurred', notifyKind: occurrence.kind, atMs: this.now() }, config.notify);
    this.state = step.state;
    for (const effect of step.effects) this.carryOut(effect, occurrence, config);
  }

  private carryOut(effect: NotifyEffect, occurrence: Occurrence, config: Config): void {
    const { logger } = this.deps;
    switch (effect.kind) {
      case 'suppressed':
        return logger.emit({ kind: 'notify-suppressed', event: effect.notifyKind, reason: effect.reason, suppressed: effect.suppressed });
      case 'unexpected':
        return logger.emit({ kind: 'unexpected', message: effect.message });
      case 'run': {
        // Read now, at the event: by the time the command reads it, the worker may have moved on.
        const payload: NotifyPayload = {
          event: occurrence.kind,
          time: isoTime(this.wallNow()),
          host: this.host,
          project: projectName(config),
          daemon_pid: process.pid,
          message: occurrence.message,
          cause: occurrence.cause,
          figures: occurrence.figures,
          suppressed: effect.suppressed,
          worker: this.deps.workerStatus(),
        };
        // Spawned on the next turn: the step of the supervisor (or memory guard) that logged the
        // event finishes first, without a fork in the middle of it.
        const run = new Promise((resolve) => setImmediate(resolve)).then(() => this.run(effect.notifyKind, effect.suppressed, payload, config));
        this.inFlight.add(run);
        void run.finally(() => this.inFlight.delete(run));
        return;
      }
    }
  }

  private async run(kind: string, suppressed: number, payload: NotifyPayload, config: Config): Promise<void> {
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !DAEMON_ONLY_ENV.includes(name) && name !== 'AUTOPILOTD_GENERATION') env[name] = value;
    }
    this.runs += 1;
    const result = await runNotifyCommand({
      argv: config.notify.command!,
      cwd: config.working_dir,
      env,
      marker: `${this.deps.instanceId}.notify.${this.runs}`,
      input: `${JSON.stringify(payload)}\n`,
      timeoutMs: config.notify.timeout_ms,
      table: this.deps.table,
      uid: this.deps.uid,
      protectedPids: this.deps.protectedPids,
    });
    this.report(kind, suppressed, result, config.notify.timeout_ms);
    const step = stepNotify(this.state, { kind: 'finished', notifyKind: kind, atMs: this.now() }, this.deps.config().notify);
    this.state = step.state;
    for (const effect of step.effects) if (effect.kind === 'unexpected') this.deps.logger.emit({ kind: 'unexpected', message: effect.message });
  }

  private report(kind: string, suppressed: number, result: NotifyResult, timeoutMs: number): void {
    const { logger } = this.deps;
    for (const stream of ['stdout', 'stderr'] as const) {
      const output = result[stream];
      const text = output.text.replace(/\s+$/, '');
      if (text !== '' || output.droppedBytes > 0) logger.emit({ kind: 'notify-output', event: kind, stream, text, droppedBytes: output.droppedBytes });
    }
    const reason = failureOf(result, timeoutMs);
    if (reason === null) logger.emit({ kind: 'notify-sent', event: kind, durationMs: result.durationMs, suppressed });
    else logger.emit({ kind: 'notify-failed', event: kind, reason });
  }
}

/** Why a run failed, in words, or null when it exited 0. */
function failureOf(result: NotifyResult, timeoutMs: number): string | null {
  const o = result.outcome;
  switch (o.kind) {
    case 'exited': return o.code === 0 ? null : `exited with code ${o.code}`;
    case 'signalled': return `killed by ${o.signal}`;
    case 'spawn-failed': return o.reason;
    case 'timed-out':
      return `still running after ${timeoutMs} ms: its tree was killed${o.survivors.length > 0 ? `, but pids ${o.survivors.join(',')} survived SIGKILL` : ''}`;
  }
}
