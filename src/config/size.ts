// Byte sizes written as text ("2GiB", "500MB", "1.5GiB", "123"). Exact: decimal fractions are
// computed with BigInt so that "1.1MB" is 1100000, not 1100000.0000000002.

const UNIT_BYTES: Readonly<Record<string, bigint>> = {
  '': 1n,
  b: 1n,
  kb: 1000n,
  mb: 1000n ** 2n,
  gb: 1000n ** 3n,
  tb: 1000n ** 4n,
  kib: 1024n,
  mib: 1024n ** 2n,
  gib: 1024n ** 3n,
  tib: 1024n ** 4n,
};

export const SIZE_UNITS = 'B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024)';

export type SizeParse = { ok: true; bytes: number } | { ok: false; reason: string };

/** Parses a size string into a whole number of bytes; the unit is case-insensitive. */
export function parseSize(text: string): SizeParse {
  const match = /^\s*(\d+)(?:\.(\d+))?\s*([a-z]*)\s*$/i.exec(text);
  if (match === null) return { ok: false, reason: 'not a number followed by an optional unit' };
  const [, whole = '', fraction = '', unitText = ''] = match;
  const unit = UNIT_BYTES[unitText.toLowerCase()];
  if (unit === undefined) return { ok: false, reason: `unknown unit "${unitText}"; units: ${SIZE_UNITS}` };
  const scaled = BigInt(whole + fraction) * unit;
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) return { ok: false, reason: 'not a whole number of bytes' };
  const bytes = scaled / divisor;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'too large' };
  return { ok: true, bytes: Number(bytes) };
}

/** Short human form for comments, e.g. 2147483648 -> "2 GiB"; exact multiples only. */
export function describeSize(bytes: number): string {
  const units: Array<[string, number]> = [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]];
  for (const [name, factor] of units) {
    if (bytes >= factor && bytes % (factor / 4) === 0) return `${bytes / factor} ${name}`;
  }
  return `${bytes} B`;
}
