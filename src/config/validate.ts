// Checks one value against its field's schema and turns valibot issues into ConfigProblems.
import * as v from 'valibot';
import type { ConfigProblem } from './errors.js';
import type { LayerValue } from './layer.js';
import type { SourcePosition } from './locate.js';
import { resolveConfigPath } from './paths.js';
import type { Field } from './schema.js';
import { parseSize } from './size.js';
import { closestMatch } from './suggest.js';
import { describeValue, tomlKey } from './toml-text.js';

export type Locate = (path: readonly string[]) => SourcePosition | undefined;

/** The checked value (paths made absolute), or undefined after adding its problems. */
export function validateValue(
  field: Field,
  given: LayerValue,
  homeDir: string,
  problems: ConfigProblem[],
  locate?: Locate,
): { value: unknown } | undefined {
  const result = v.safeParse(field.schema, given.raw, { abortPipeEarly: true });
  if (result.success) {
    const value = field.kind === 'path' ? resolveConfigPath(result.output as string, homeDir, given.baseDir) : result.output;
    return { value };
  }
  for (const issue of result.issues) problems.push(toProblem(field, given, issue, locate));
  return undefined;
}

function toProblem(field: Field, given: LayerValue, issue: v.BaseIssue<unknown>, locate?: Locate): ConfigProblem {
  const keys = (issue.path ?? []).map((item) => item.key);
  const atRoot = keys.length === 0;
  let key = field.key;
  for (const part of keys) key += typeof part === 'number' ? `[${part}]` : `.${tomlKey(String(part))}`;
  const input = atRoot ? given.raw : issue.input;
  const got = atRoot && given.rawText !== undefined ? JSON.stringify(given.rawText) : describeValue(input);
  const problem: ConfigProblem = { ...given.origin, key, expected: issue.message, got };
  if (locate !== undefined) {
    const textKeys = keys.filter((part): part is string => typeof part === 'string');
    const at = locate([...field.key.split('.'), ...textKeys]);
    if (at !== undefined) Object.assign(problem, { line: at.line, column: at.column });
  }
  const hint = atRoot ? hintFor(field, input, given.origin.source) : elementHintFor(field, input);
  if (hint !== undefined) problem.hint = hint;
  return problem;
}

/** A misspelt element of a 'choices' list: the closest allowed name. */
function elementHintFor(field: Field, input: unknown): string | undefined {
  if (field.kind !== 'choices' || field.choices === undefined || typeof input !== 'string') return undefined;
  const near = closestMatch(input, field.choices);
  return near === undefined ? undefined : `did you mean ${JSON.stringify(near)}?`;
}

function hintFor(field: Field, input: unknown, source: string): string | undefined {
  if (typeof input !== 'string') return undefined;
  if (field.kind === 'choice' && field.choices !== undefined) {
    const near = closestMatch(input, field.choices);
    return near === undefined ? undefined : `did you mean ${JSON.stringify(near)}?`;
  }
  if (field.kind === 'size') {
    const parsed = parseSize(input);
    return parsed.ok ? undefined : parsed.reason;
  }
  if (field.kind === 'integer') {
    if (source === 'file' && /^[+-]?\d+$/.test(input)) return 'write the number without quotes';
    if (field.key.endsWith('_ms')) return 'durations are whole milliseconds, without a unit';
  }
  return undefined;
}
