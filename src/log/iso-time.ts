// ISO 8601 UTC timestamps, as Date.prototype.toISOString writes them. Node 20's V8 computes the
// local time zone offset inside toISOString (and ignores it), which loads ICU's time zone data on
// first use: ~0.9 MiB of the daemon's RSS for a timestamp (BENCHMARKS.md, "Daemon memory").
// The UTC getters need no time zone.

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `new Date(ms).toISOString()`, without the time zone lookup. */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  // Invalid (RangeError) and years outside 0000-9999 (written ±YYYYYY): toISOString's own rules.
  if (!(year >= 0 && year <= 9999)) return d.toISOString();
  const millis = d.getUTCMilliseconds();
  return `${String(year).padStart(4, '0')}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T`
    + `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}
