// Writing values as TOML text: for `config show` (must parse back) and for the "got ..." part of
// problems (same notation as the file, shortened).
/** A TOML basic string. JSON's escapes are a subset of TOML's, except that TOML forbids raw DEL. */
export function tomlString(text: string): string {
  return JSON.stringify(text).replace(/\x7f/g, '\\u007f');
}

/** A key, bare when TOML allows it, else quoted. */
export function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : tomlString(key);
}

/** Inline TOML for a parsed value; bigint is a TOML integer, number a TOML float. */
export function tomlInline(value: unknown): string {
  if (typeof value === 'string') return tomlString(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return tomlFloat(value);
  if (typeof value === 'boolean') return String(value);
  // smol-toml's TomlDate extends Date and prints itself in TOML form.
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return `[${value.map(tomlInline).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([key, inner]) => `${tomlKey(key)} = ${tomlInline(inner)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return String(value);
}

export function tomlFloat(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  const text = String(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

const MAX_DESCRIBED_CHARS = 80;

/** The "got" text of a problem: the value as it would be written in TOML, cut to one short line. */
export function describeValue(value: unknown): string {
  const text = tomlInline(value);
  return text.length <= MAX_DESCRIBED_CHARS ? text : `${text.slice(0, MAX_DESCRIBED_CHARS - 3)}...`;
}
