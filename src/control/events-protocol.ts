// The `subscribe` stream on the control socket (README "Event stream"): after the request's reply,
// one line per log event, each with a sequence number and a time, and at the end a line saying why
// the stream ended. Versioned like every other line. Pure: the CLI bundle and tests load it freely.

import {
  PROTOCOL_VERSION,
  isProtocolFailure,
  parseReply,
  type JsonValue,
  type ProtocolFailure,
  type Reply,
} from './protocol.js';

/** Events kept for a new subscriber: it first gets these, oldest first. */
export const EVENT_BACKLOG = 100;

export type EventLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error'];

export interface StreamEvent {
  /** 1 for the daemon's first event, +1 for each; a gap means events this subscriber missed. */
  seq: number;
  /** ISO-8601 UTC, to the millisecond. */
  at: string;
  level: EventLevel;
  /** The event's kind (e.g. "worker-exited"), or null for a line that is no typed event. */
  kind: string | null;
  /** The log line's text, without timestamp and level. */
  text: string;
}

/**
 * Why the daemon ended a stream: `done` (the backlog was asked for without follow), `too_slow` (the
 * subscriber did not read and its buffer filled), `shutting_down`.
 */
export const END_REASONS = ['done', 'too_slow', 'shutting_down'] as const;
export type EndReason = (typeof END_REASONS)[number];

export interface StreamEnd {
  reason: EndReason;
  message: string;
}

/** The data of the ok reply to `subscribe`. */
export interface SubscribeData {
  /** Events that follow at once (at most EVENT_BACKLOG). */
  backlog: number;
  follow: boolean;
  /** Bytes of unread events the daemon holds for this subscriber before it drops it. */
  max_buffered_bytes: number;
}

export interface SubscribeArgs {
  /** Stay subscribed after the backlog (default true); false ends the stream with `done`. */
  follow: boolean;
}

/** Where a subscriber's events come from (the daemon's event journal; tests give their own). */
export interface EventSource {
  /** The backlog now, and every later event to `listener` until detach() is called. */
  attach(listener: (event: StreamEvent) => void): { backlog: readonly StreamEvent[]; detach(): void };
  /** The backlog only. */
  backlog(): readonly StreamEvent[];
}

export type StreamLine =
  | { type: 'reply'; reply: Reply }
  | { type: 'event'; event: StreamEvent }
  | { type: 'end'; end: StreamEnd };

/** The args of a `subscribe` request, or what is wrong with them. */
export function parseSubscribeArgs(args: Record<string, unknown>): SubscribeArgs | { problem: string } {
  const follow = args['follow'];
  if (follow !== undefined && typeof follow !== 'boolean') return { problem: `"args.follow" must be true or false, got ${JSON.stringify(follow)}` };
  return { follow: follow ?? true };
}

export function encodeEvent(event: StreamEvent): string {
  return `${JSON.stringify({ v: PROTOCOL_VERSION, event })}\n`;
}

export function encodeEnd(end: StreamEnd): string {
  return `${JSON.stringify({ v: PROTOCOL_VERSION, end })}\n`;
}

/** Client side: one line of a subscription (the reply first, then events, maybe an end). */
export function parseStreamLine(line: string): StreamLine | ProtocolFailure {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return failure(`daemon sent invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value) || value['v'] !== PROTOCOL_VERSION) return failure(`daemon sent a malformed stream line: ${line.slice(0, 80)}`);
  if ('ok' in value) {
    const reply = parseReply(line);
    return isProtocolFailure(reply) ? reply : { type: 'reply', reply };
  }
  const event = value['event'];
  if (isObject(event)) {
    return isStreamEvent(event) ? { type: 'event', event } : failure(`daemon sent a malformed event: ${line.slice(0, 80)}`);
  }
  const end = value['end'];
  if (isObject(end) && typeof end['reason'] === 'string' && typeof end['message'] === 'string') {
    return { type: 'end', end: { reason: end['reason'] as EndReason, message: end['message'] } };
  }
  return failure(`daemon sent a malformed stream line: ${line.slice(0, 80)}`);
}

const LEVEL_LABEL: Record<EventLevel, string> = { error: 'ERROR', warn: 'WARN ', info: 'INFO ', debug: 'DEBUG' };

/** An event as the log file shows it (the logger's plain style): `<time> <LEVEL> <text>`. */
export function formatEventLine(event: StreamEvent): string {
  return `${event.at} ${LEVEL_LABEL[event.level]} ${event.text}`;
}

function isStreamEvent(e: Record<string, unknown>): e is Record<string, JsonValue> & StreamEvent {
  return Number.isSafeInteger(e['seq']) && typeof e['at'] === 'string' && typeof e['level'] === 'string' && LEVELS.includes(e['level'])
    && (e['kind'] === null || typeof e['kind'] === 'string') && typeof e['text'] === 'string';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function failure(message: string): ProtocolFailure {
  return { failed: true, id: null, code: 'bad_request', message };
}
