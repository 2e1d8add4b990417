import { UsageError } from './exit-codes.js';

/** DURATION, for every flag that takes one, in the helps and the error (written once, here). */
export const DURATION_SYNTAX = 'a number and a unit, ms, s, m or h (500ms, 30s, 2m, 1h); a bare number is seconds';

/** Parses a DURATION (a bare number is seconds, as for timeout(1) and systemd). Returns ms. */
export function parseDuration(text: string, flag: string, command: string | null = null): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${command === null ? '' : `${command}: `}${flag}: expected a DURATION, ${DURATION_SYNTAX}; got '${text}'`, command);
  const value = Number(m[1]);
  return Math.round(value * UNIT_MS[m[2] ?? 's']!);
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
