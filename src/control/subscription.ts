// One subscriber's stream, once its `subscribe` request is admitted: the backlog, then each event as
// it happens, written straight to the socket. The daemon never waits for a subscriber: the bytes it
// has not read stay in the socket's buffer, and once they pass maxBufferedBytes the subscriber is
// dropped (a last line says why, in case it reads again) instead of the buffer growing.

import type { Socket } from 'node:net';
import { encodeEnd, encodeEvent, type EndReason, type EventSource, type StreamEvent, type StreamEnd } from './events-protocol.js';

/** Unread bytes held per subscriber before it is dropped: ~1000 typical event lines. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;

/** What a connection needs to admit subscribers (the server hands it in). */
export interface SubscriptionPolicy {
  source: EventSource;
  /** null when one more subscriber may join now, else why not (the `busy` message). */
  admit(): string | null;
  maxBufferedBytes: number;
  /** Told, a turn after, that a subscriber was dropped for not reading. */
  onDropped(info: DroppedSubscriber): void;
}

export interface DroppedSubscriber {
  bufferedBytes: number;
  limitBytes: number;
  /** Events written to it before it was dropped. */
  sent: number;
}

export interface SubscriptionOptions {
  follow: boolean;
  maxBufferedBytes: number;
  /** How long a last line may wait to be read before the socket is cut. */
  lingerMs: number;
  /** The stream is ending (dropped, done, shut down): the connection no longer counts as open. */
  onEnding(): void;
  onDropped(info: DroppedSubscriber): void;
}

export class Subscription {
  private detach: () => void = () => {};
  private ended = false;
  private sent = 0;
  /** Until begin(): the backlog and what came since, held while the reply is being written. */
  private pending: StreamEvent[] | null;
  private endAfterBegin: StreamEnd | null = null;

  /** Takes the backlog (and, with follow, attaches for live events) now; writes nothing until begin(). */
  constructor(
    private readonly socket: Socket,
    source: EventSource,
    private readonly opts: SubscriptionOptions,
  ) {
    socket.once('close', () => this.stop());
    if (!opts.follow) {
      this.pending = [...source.backlog()];
      return;
    }
    const attached = source.attach((event) => this.send(event));
    this.detach = attached.detach;
    this.pending = [...attached.backlog];
  }

  /** Events that begin() writes at once. */
  get backlogCount(): number {
    return this.pending?.length ?? 0;
  }

  /** The reply is written: the backlog follows it (whole: it is bounded), then live events. */
  begin(): void {
    const pending = this.pending ?? [];
    this.pending = null;
    if (this.ended) return;
    if (!this.socket.writable) {
      this.stop();
      return;
    }
    for (const event of pending) this.write(event);
    if (this.endAfterBegin !== null) this.finish(this.endAfterBegin.reason, this.endAfterBegin.message);
    else if (!this.opts.follow) this.finish('done', 'backlog sent; subscribe with follow for live events');
  }

  /** Ends the stream with a last line saying why. */
  finish(reason: EndReason, message: string): void {
    if (this.ended) return;
    if (this.pending !== null) {
      this.endAfterBegin = { reason, message };
      return;
    }
    this.stop();
    this.opts.onEnding();
    if (!this.socket.writable) {
      this.socket.destroy();
      return;
    }
    // A peer that reads nothing more cannot hold the fd: cut off after a short linger.
    const linger = setTimeout(() => this.socket.destroy(), this.opts.lingerMs);
    this.socket.once('close', () => clearTimeout(linger));
    this.socket.end(encodeEnd({ reason, message }), () => this.socket.destroy());
  }

  private stop(): void {
    this.ended = true;
    this.detach();
    this.detach = () => {};
  }

  private send(event: StreamEvent): void {
    if (this.ended) return;
    if (this.pending !== null) {
      this.pending.push(event);
      return;
    }
    if (!this.socket.writable) return;
    const bufferedBytes = this.socket.writableLength;
    if (bufferedBytes <= this.opts.maxBufferedBytes) {
      this.write(event);
      return;
    }
    const limitBytes = this.opts.maxBufferedBytes;
    const sent = this.sent;
    this.finish('too_slow', `dropped: ${bufferedBytes} bytes of events unread (limit ${limitBytes}); subscribe again to resume`);
    // Reported a turn later: the report is itself a log event, and this one is still being delivered.
    setImmediate(() => this.opts.onDropped({ bufferedBytes, limitBytes, sent }));
  }

  private write(event: StreamEvent): void {
    this.sent += 1;
    this.socket.write(encodeEvent(event));
  }
}
