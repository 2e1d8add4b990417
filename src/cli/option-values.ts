// Option values judged as the command line is read (command-line.ts), before any configuration is
// loaded: a mistyped value is a usage error (exit 64) whatever state the config file is in, not a
// configuration error because the file was looked at first. The commands then read the same values.

import { DURATION_SYNTAX, durationMs, parseDuration } from './duration.js';
import { UsageError } from './exit-codes.js';

/** Shortest `status --watch --interval`: a redraw costs a status round trip and a /proc look in the daemon. */
export const MIN_INTERVAL_MS = 100;

/** Throws a UsageError for the first option value of `command` that is not one. */
export function checkOptionValues(command: string, values: Record<string, string | boolean | undefined>): void {
  if (command === 'stop' && typeof values.timeout === 'string') parseDuration(values.timeout, '--timeout', 'stop');
  if (command === 'status' && values.interval !== undefined) {
    if (values.watch !== true) throw new UsageError('status: --interval goes with --watch', 'status');
    watchIntervalMs(values);
  }
  if (command === 'logs') {
    const { lines, stream, since } = values;
    if (typeof lines === 'string' && !(Number.isInteger(Number(lines)) && Number(lines) >= 0)) throw new UsageError(`logs: -n expects a whole number, got '${lines}'`, 'logs');
    if (typeof stream === 'string') streamOf(stream);
    if (typeof since === 'string') parseSince(since, Date.now());
  }
}

/** `status --watch --interval` in ms (default 1s, at least MIN_INTERVAL_MS). */
export function watchIntervalMs(values: Record<string, string | boolean | undefined>): number {
  if (typeof values.interval !== 'string') return 1000;
  const ms = parseDuration(values.interval, '--interval', 'status');
  if (ms < MIN_INTERVAL_MS) throw new UsageError(`status: --interval: at least ${MIN_INTERVAL_MS}ms, got '${values.interval}'`, 'status');
  return ms;
}

/** `logs --stream`: stdout or stderr. */
export function streamOf(text: string): 'stdout' | 'stderr' {
  if (text !== 'stdout' && text !== 'stderr') throw new UsageError(`logs: --stream expects stdout or stderr, got '${text}'`, 'logs');
  return text;
}

const SINCE_SYNTAX = `a DURATION ago (${DURATION_SYNTAX}) or an ISO 8601 time (2026-01-31T12:00:00Z; without a zone, local time)`;

/**
 * `10m` (that long before `nowMs`) or an ISO 8601 date or time; ms since the epoch. Without a zone
 * it is local time, a date alone included (its local midnight: JavaScript's Date.parse would take
 * UTC's). A date or time that does not exist (2026-02-30, 24:00, a zone +25:00) is refused rather
 * than rolled over into the next month or day.
 */
export function parseSince(text: string, nowMs: number): number {
  const value = text.trim();
  const ago = durationMs(value);
  if (ago !== null) return nowMs - ago;
  const ms = isoTimeMs(value);
  if (ms === null) throw new UsageError(`logs: --since expects ${SINCE_SYNTAX}; got '${text}'`, 'logs');
  return ms;
}

const ISO_TIME = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|([+-])(\d\d):?(\d\d))?)?$/;

/** An ISO 8601 date or time as ms since the epoch; null when it is not one or names no real instant. */
function isoTimeMs(value: string): number | null {
  const m = ISO_TIME.exec(value);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
  const milli = m[7] === undefined ? 0 : Number(`0.${m[7]}`) * 1000;
  // The calendar's own check: a date that rolls over (Feb 30 -> Mar 2) does not come back as given.
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  if (m[8] === undefined) return new Date(year, month - 1, day, hour, minute, second, milli).getTime();
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return null;
  const offsetMs = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return Date.UTC(year, month - 1, day, hour, minute, second, milli) - offsetMs;
}

