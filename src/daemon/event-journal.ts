// The daemon's events as `subscribe` streams them: every entry the log shows (at the log level in
// force; the worker's own output is not an event, `logs` has it), numbered from 1, the last
// EVENT_BACKLOG kept for a new subscriber. Listens from the daemon's first log line on.

import { isoTime } from '../log/iso-time.js';
import { EVENT_BACKLOG, type EventSource, type StreamEvent } from '../control/events-protocol.js';
import type { Logger, LogRecord } from '../log/logger.js';

export class EventJournal implements EventSource {
  private seq = 0;
  private readonly recent: StreamEvent[] = [];
  private readonly listeners = new Set<(event: StreamEvent) => void>();
  private readonly unsubscribe: () => void;

  constructor(private readonly logger: Logger) {
    this.unsubscribe = logger.subscribe((r) => this.heard(r));
  }

  /** Events numbered so far. */
  get lastSeq(): number {
    return this.seq;
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  attach(listener: (event: StreamEvent) => void): { backlog: readonly StreamEvent[]; detach(): void } {
    this.listeners.add(listener);
    return { backlog: [...this.recent], detach: () => this.listeners.delete(listener) };
  }

  backlog(): readonly StreamEvent[] {
    return [...this.recent];
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }

  private heard(r: LogRecord): void {
    if (!this.logger.enabled(r.level)) return;
    this.seq += 1;
    const event: StreamEvent = { seq: this.seq, at: isoTime(r.atMs), level: r.level, kind: r.event?.kind ?? null, text: r.text };
    this.recent.push(event);
    if (this.recent.length > EVENT_BACKLOG) this.recent.shift();
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        // Not logged: that would be an event for this very loop.
        process.stderr.write(`autopilotd: event subscriber threw: ${(err as Error)?.stack ?? String(err)}\n`);
      }
    }
  }
}
