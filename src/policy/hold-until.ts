// How long a worker that exited with a hold code waits before its next start (issue #17). Pure:
// the daemon reads the worker's hold file and the wall clock; this decides what they mean.
// Semantics: docs/supervision.md, "What the worker's exit means".

/** What the worker's hold file said at its exit: the time it asked for, as a delay from the exit. */
export type HoldRequest =
  | { kind: 'none' }
  | { kind: 'unreadable'; reason: string }
  | { kind: 'invalid'; text: string }
  /** By the wall clock, the written time minus the exit's; zero or less when it is past. */
  | { kind: 'at'; inMs: number };

export interface HoldSettings {
  hold_ms: number;
  hold_max_ms: number;
}

/** Where the delay came from: the hold file's time, that time cut to hold_max_ms, or hold_ms. */
export type HoldBasis = 'file' | 'hold_max_ms' | 'hold_ms';

export interface HoldDelay {
  delayMs: number;
  basis: HoldBasis;
  /** Why hold_ms applies, in words, when the worker wrote something that was not used (else null). */
  fallbackReason: string | null;
}

/** The delay from the exit to the next start. */
export function holdDelay(request: HoldRequest, s: HoldSettings): HoldDelay {
  switch (request.kind) {
    case 'none': return { delayMs: s.hold_ms, basis: 'hold_ms', fallbackReason: null };
    case 'unreadable': return { delayMs: s.hold_ms, basis: 'hold_ms', fallbackReason: `hold file unreadable: ${request.reason}` };
    case 'invalid': return { delayMs: s.hold_ms, basis: 'hold_ms', fallbackReason: `hold file holds neither an ISO-8601 time nor epoch seconds: ${JSON.stringify(request.text.slice(0, 64))}` };
    case 'at':
      if (request.inMs <= 0) return { delayMs: s.hold_ms, basis: 'hold_ms', fallbackReason: 'the time in the hold file is past' };
      if (request.inMs > s.hold_max_ms) return { delayMs: s.hold_max_ms, basis: 'hold_max_ms', fallbackReason: null };
      return { delayMs: Math.ceil(request.inMs), basis: 'file', fallbackReason: null };
  }
}

const EPOCH_SECONDS = /^\d{1,12}(\.\d+)?$/;
// A date, or a date and time with an optional zone; Date.parse alone accepts much that is no ISO-8601.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/i;

/** The wall-clock ms a hold file's text names (ISO-8601 or epoch seconds, blanks around it ignored), or null. */
export function parseHoldUntil(text: string): number | null {
  const value = text.trim();
  if (EPOCH_SECONDS.test(value)) return Math.round(Number(value) * 1000);
  if (!ISO_8601.test(value)) return null;
  const ms = Date.parse(value.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : null;
}
