// What a reload changed, for the `configuration reloaded` line: key paths with old and new values.
// Values are shown as TOML-like literals and cut short, so a long command line or a pasted blob
// cannot flood the log (the config holds no secrets, but a line stays a line).

import type { ConfigChange } from '../log/events.js';

/** Longest value shown, in characters, before it is cut with `...`. */
export const CHANGE_VALUE_CHARS = 60;
/** Changes listed in one line; the rest are counted. */
export const CHANGES_LISTED = 20;

type Value = unknown;

/** The settings that differ between `before` and `after`, in key order, leaves only. */
export function configChanges(before: Value, after: Value): ConfigChange[] {
  const changes: ConfigChange[] = [];
  walk(before, after, '', changes);
  if (changes.length <= CHANGES_LISTED) return changes;
  const more = changes.length - CHANGES_LISTED;
  return [...changes.slice(0, CHANGES_LISTED), { key: `(and ${more} more)`, from: '', to: '' }];
}

function isTable(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function walk(before: Value, after: Value, prefix: string, out: ConfigChange[]): void {
  if (isTable(before) && isTable(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const key of keys) walk(before[key], after[key], prefix === '' ? key : `${prefix}.${key}`, out);
    return;
  }
  const from = literal(before);
  const to = literal(after);
  if (from !== to) out.push({ key: prefix, from: shorten(from), to: shorten(to) });
}

/** A value as written in the config file: strings quoted, arrays bracketed, absent as (unset). */
export function literal(v: Value): string {
  if (v === undefined || v === null) return '(unset)';
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  if (isTable(v)) return `{${Object.entries(v).map(([k, x]) => `${k} = ${literal(x)}`).join(', ')}}`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

function shorten(text: string): string {
  return text.length <= CHANGE_VALUE_CHARS ? text : `${text.slice(0, CHANGE_VALUE_CHARS - 3)}...`;
}
