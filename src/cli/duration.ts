import { UsageError } from './exit-codes.js';

/** Parses a CLI duration: "30" or "30s" (seconds), "500ms", "2m". Returns milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: expected a duration such as 30, 30s, 500ms or 2m, got '${text}'`);
  const value = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? value : unit === 's' ? value * 1000 : value * 60_000);
}
