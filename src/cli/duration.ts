import { UsageError } from './exit-codes.js';

/** DURATION, for every flag that takes one, in the helps and the error (written once, here). */
export const DURATION_SYNTAX = 'a number and a unit, ms, s, m or h (500ms, 30s, 2m, 1h); a bare number is seconds';

/**
 * A DURATION in ms (a bare number is seconds, as for timeout(1) and systemd), or null when `text`
 * is not one. The one parser of the syntax: flags (parseDuration) and `logs --since 10m` alike.
 */
export function durationMs(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']!);
}

/** Parses a DURATION flag value; a usage error (exit 64) naming the flag when it is not one. Returns ms. */
export function parseDuration(text: string, flag: string, command: string | null = null): number {
  const ms = durationMs(text);
  if (ms === null) throw new UsageError(`${command === null ? '' : `${command}: `}${flag}: expected a DURATION, ${DURATION_SYNTAX}; got '${text}'`, command);
  return ms;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
