// The environment layer: AUTOPILOTD_<KEY> and AUTOPILOTD_<SECTION>_<KEY>, coerced by the key's kind.
import type { ConfigProblem } from './errors.js';
import { CONFIG_ENV } from './file.js';
import type { LayerValue } from './layer.js';
import { FIELDS, type Field } from './schema.js';
import { closestMatch } from './suggest.js';

export const ENV_PREFIX = 'AUTOPILOTD_';

/** Set by the daemon in the worker's environment, so a worker that runs autopilotd inherits them. */
export const DAEMON_SET_ENV = ['AUTOPILOTD_INSTANCE', 'AUTOPILOTD_GENERATION', 'AUTOPILOTD_HOLD_UNTIL_FILE'] as const;

/** "memory.poll_interval_ms" -> "AUTOPILOTD_MEMORY_POLL_INTERVAL_MS". */
export function envNameFor(key: string): string {
  return ENV_PREFIX + key.replace('.', '_').toUpperCase();
}

const FIELD_BY_ENV: ReadonlyMap<string, Field> = new Map(FIELDS.map((field) => [envNameFor(field.key), field]));

export function readEnvLayer(env: Record<string, string | undefined>, cwd: string, problems: ConfigProblem[]): LayerValue[] {
  const values: LayerValue[] = [];
  const ignored: readonly string[] = [CONFIG_ENV, ...DAEMON_SET_ENV];
  for (const name of Object.keys(env).sort()) {
    const text = env[name];
    if (text === undefined || !name.startsWith(ENV_PREFIX) || ignored.includes(name)) continue;
    const field = FIELD_BY_ENV.get(name);
    if (field === undefined) {
      problems.push(unknownVariable(name));
      continue;
    }
    const coerced = coerce(field, text);
    if (!coerced.ok) {
      problems.push({ source: 'env', envName: name, key: field.key, expected: coerced.expected, got: JSON.stringify(text) });
      continue;
    }
    values.push({
      key: field.key,
      raw: coerced.value,
      rawText: text,
      origin: { source: 'env', envName: name },
      source: { kind: 'env', name },
      baseDir: cwd,
    });
  }
  return values;
}

type Coerced = { ok: true; value: unknown } | { ok: false; expected: string };

/**
 * Text to the type the schema expects. Integers must be plain decimal digits ("10s", "1e3" and ""
 * stay strings and fail the schema); lists and tables are JSON.
 */
function coerce(field: Field, text: string): Coerced {
  switch (field.kind) {
    case 'integer':
    case 'size':
      return { ok: true, value: /^[+-]?\d+$/.test(text) ? BigInt(text) : text };
    case 'number':
      return { ok: true, value: /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : text };
    case 'argv':
    case 'names':
      return parseJson(text, 'a JSON array of strings, e.g. ["node", "worker.js"]');
    case 'choices':
      return parseJson(text, 'a JSON array of strings, e.g. ["failed", "memory"]');
    case 'env':
      return parseJson(text, 'a JSON object of strings, e.g. {"RUST_LOG": "info"}');
    case 'exit-codes': {
      // JSON has no integer type: a whole number becomes the bigint the schema takes, as a TOML integer does.
      const parsed = parseJson(text, 'a JSON array of exit codes, e.g. [75]');
      if (parsed.ok && Array.isArray(parsed.value)) {
        return { ok: true, value: parsed.value.map((item: unknown) => (typeof item === 'number' && Number.isSafeInteger(item) ? BigInt(item) : item)) };
      }
      return parsed;
    }
    default:
      return { ok: true, value: text };
  }
}

function parseJson(text: string, expected: string): Coerced {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    // The problem reports the variable and its text; JSON's own message adds nothing useful.
    return { ok: false, expected };
  }
}

function unknownVariable(name: string): ConfigProblem {
  const known = [...FIELD_BY_ENV.keys(), CONFIG_ENV];
  const near = closestMatch(name.slice(ENV_PREFIX.length), known.map((other) => other.slice(ENV_PREFIX.length)));
  const problem: ConfigProblem = { source: 'env', envName: name, key: '', expected: 'a known AUTOPILOTD_* variable', reason: 'unknown variable' };
  if (near !== undefined) problem.hint = `did you mean ${ENV_PREFIX}${near}?`;
  return problem;
}
