// What a reload changed, for the `configuration reloaded` line: key paths with old and new values.
// Values are shown as TOML-like literals and cut short, so a long command line or a pasted blob
// cannot flood the log. The config can hold secrets: `worker.env` is where an API key goes, and a
// command line may carry a token. Those keys are named with what happened to them (added, removed,
// changed), never with a value: the line reaches the log file, journald and every event subscriber.

import type { ConfigChange } from '../log/events.js';

/** Longest value shown, in characters, before it is cut with `...`. */
export const CHANGE_VALUE_CHARS = 60;
/** Changes listed in one line; the rest are counted. */
export const CHANGES_LISTED = 20;

type Value = unknown;

/** Tables whose every entry may be a secret: each key is listed, no value is. */
const SECRET_TABLES: ReadonlySet<string> = new Set(['worker.env']);
/** argv-valued keys that may carry a token: listed as changed, without their values. */
const SECRET_LEAVES: ReadonlySet<string> = new Set(['worker.command', 'notify.command', 'health.probe_command']);

/** What a reload changed: at most CHANGES_LISTED of them, and how many more were left out. */
export interface ConfigDiff { changes: ConfigChange[]; omitted: number }

/** The settings that differ between `before` and `after`, in key order, leaves only. */
export function configChanges(before: Value, after: Value): ConfigDiff {
  const changes: ConfigChange[] = [];
  walk(before, after, '', changes);
  if (changes.length <= CHANGES_LISTED) return { changes, omitted: 0 };
  return { changes: changes.slice(0, CHANGES_LISTED), omitted: changes.length - CHANGES_LISTED };
}

function isTable(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function walk(before: Value, after: Value, prefix: string, out: ConfigChange[], secret = false): void {
  const secretTable = SECRET_TABLES.has(prefix);
  if ((isTable(before) && isTable(after)) || (secretTable && (isTable(before) || isTable(after)))) {
    // A secret table added or removed whole is still listed key by key, never as one literal.
    const b = isTable(before) ? before : {};
    const a = isTable(after) ? after : {};
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
    for (const key of keys) walk(b[key], a[key], prefix === '' ? key : `${prefix}.${key}`, out, secret || secretTable);
    return;
  }
  const from = literal(before);
  const to = literal(after);
  if (from === to) return;
  if (secret || secretTable) out.push({ key: prefix, hidden: isUnset(before) ? 'added' : isUnset(after) ? 'removed' : 'changed' });
  else if (SECRET_LEAVES.has(prefix)) out.push({ key: prefix, hidden: 'changed' });
  else {
    const at = firstDifference(from, to);
    out.push({ key: prefix, from: shorten(from, at), to: shorten(to, at) });
  }
}

const isUnset = (v: Value): boolean => v === undefined || v === null;

/** A value as written in the config file: strings quoted, arrays bracketed, absent as (unset). */
export function literal(v: Value): string {
  if (v === undefined || v === null) return '(unset)';
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  if (isTable(v)) return `{${Object.entries(v).map(([k, x]) => `${k} = ${literal(x)}`).join(', ')}}`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** Characters kept before the first difference when a value is cut around it. */
const CONTEXT_CHARS = 20;

function firstDifference(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i += 1;
  return i;
}

/**
 * `text` in at most CHANGE_VALUE_CHARS characters, keeping character `at` (where the old and new
 * values first differ) in view: both values are cut at the same place, so two values that differ
 * never look equal once shortened (a long command line changed near its end).
 */
function shorten(text: string, at: number): string {
  const max = CHANGE_VALUE_CHARS;
  if (text.length <= max) return text;
  const start = at < max - 3 ? 0 : at - CONTEXT_CHARS;
  const head = start > 0 ? '...' : '';
  const room = max - head.length;
  if (text.length - start <= room) return head + text.slice(start);
  return `${head}${text.slice(start, start + room - 3)}...`;
}
