// The keys of the configuration, each with its kind and a valibot schema for one value.
// Schema messages are the "expected ..." text of a problem, so that the mapping in validate.ts
// needs no per-key wording. Integers arrive as bigint (the file is parsed with integersAsBigInt,
// environment strings are coerced to bigint), so that 5000.0 can be told apart from 5000.
import * as v from 'valibot';
import { parseSize } from './size.js';
import { NOTIFY_EVENT_KINDS } from './types.js';
import { LISTEN_EXPECTED, parseListenAddress } from './listen-address.js';

export type FieldKind = 'integer' | 'size' | 'number' | 'text' | 'path' | 'choice' | 'choices' | 'argv' | 'names' | 'env' | 'exit-codes';

export interface Field {
  /** Dotted key as in the file, e.g. "memory.poll_interval_ms". */
  key: string;
  kind: FieldKind;
  schema: v.GenericSchema<unknown, unknown>;
  /** The allowed strings of a 'choice' field, or of each element of a 'choices' list. */
  choices?: readonly string[];
}

export const RESERVED_WORKER_ENV = ['AUTOPILOTD_INSTANCE', 'AUTOPILOTD_GENERATION', 'AUTOPILOTD_HOLD_UNTIL_FILE'] as const;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const TOO_LARGE = `an integer <= ${Number.MAX_SAFE_INTEGER}`;

function integer(min: number, expected: string): v.GenericSchema<unknown, number> {
  return v.pipe(
    v.bigint(expected),
    v.minValue(BigInt(min), expected),
    v.maxValue(MAX_SAFE, TOO_LARGE),
    v.transform((value) => Number(value)),
  );
}

const milliseconds = (min: number): v.GenericSchema<unknown, number> =>
  integer(min, `an integer ${min === 1 ? '> 0' : `>= ${min}`} (milliseconds)`);

function size(minBytes: number): v.GenericSchema<unknown, number> {
  const expected =
    minBytes === 1
      ? 'a size > 0 (an integer number of bytes, or a string like "512MiB")'
      : `a size >= ${minBytes} bytes (an integer, or a string like "10MiB")`;
  return v.pipe(
    v.custom<bigint | string>((value) => typeof value === 'bigint' || typeof value === 'string', expected),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const value = dataset.value;
      if (typeof value === 'bigint') {
        if (value <= MAX_SAFE) return Number(value);
        addIssue({ message: TOO_LARGE });
        return NEVER;
      }
      const parsed = parseSize(value);
      if (parsed.ok) return parsed.bytes;
      addIssue({ message: expected });
      return NEVER;
    }),
    v.minValue(minBytes, expected),
  );
}

function decimal(expected: string, check: (value: number) => boolean): v.GenericSchema<unknown, number> {
  return v.pipe(
    v.custom<number | bigint>((value) => typeof value === 'number' || typeof value === 'bigint', expected),
    v.transform((value) => Number(value)),
    v.check((value) => Number.isFinite(value) && check(value), expected),
  );
}

const NO_NUL = (text: string): boolean => !text.includes('\0');

function text(expected: string): v.GenericSchema<unknown, string> {
  return v.pipe(v.string(expected), v.nonEmpty(expected), v.check(NO_NUL, `${expected} without NUL characters`));
}

function choice(key: string, choices: readonly string[]): Field {
  const expected = `one of ${choices.map((name) => JSON.stringify(name)).join(', ')}`;
  return { key, kind: 'choice', choices, schema: v.picklist(choices, expected) };
}

/** A non-empty list, each element one of `choices` (repeats are harmless and kept once). */
function choices(key: string, allowed: readonly string[]): Field {
  const one = `one of ${allowed.map((name) => JSON.stringify(name)).join(', ')}`;
  const schema = v.pipe(
    v.array(v.picklist(allowed, one), `an array of event kinds, each ${one}`),
    v.nonEmpty('a non-empty array of event kinds (to send none, leave notify.command unset)'),
    v.transform((list) => [...new Set(list)]),
  );
  return { key, kind: 'choices', choices: allowed, schema };
}

const argv = v.pipe(
  v.array(v.pipe(v.string('a string'), v.check(NO_NUL, 'a string without NUL characters')), 'an array of strings (program and arguments)'),
  v.nonEmpty('a non-empty array of strings (program and arguments)'),
  v.rawCheck<string[]>(({ dataset, addIssue }) => {
    if (!dataset.typed || dataset.value[0] !== '') return;
    const input = dataset.value;
    addIssue({
      message: 'a non-empty program name',
      input: '',
      path: [{ type: 'array', origin: 'value', input, key: 0, value: '' }],
    });
  }),
);

const names = v.pipe(
  v.array(v.pipe(v.string('a string'), v.nonEmpty('a non-empty process name'), v.check(NO_NUL, 'a name without NUL characters')), 'an array of process names'),
  v.nonEmpty('a non-empty array of process names'),
);

// Written by hand rather than with v.record, which silently drops keys like "constructor".
const workerEnv = v.pipe(
  v.custom<Record<string, unknown>>(
    (value) => value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date),
    'a table of environment variables (NAME = "value")',
  ),
  v.rawCheck<Record<string, unknown>>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const table = dataset.value;
    for (const [name, value] of Object.entries(table)) {
      const path: [{ type: 'object'; origin: 'value'; input: Record<string, unknown>; key: string; value: unknown }] = [
        { type: 'object', origin: 'value', input: table, key: name, value },
      ];
      const nameProblem = checkEnvName(name);
      if (nameProblem !== undefined) addIssue({ message: nameProblem, input: name, path });
      else if (typeof value !== 'string') addIssue({ message: 'a string value', input: value, path });
      else if (!NO_NUL(value)) addIssue({ message: 'a value without NUL characters', input: value, path });
    }
  }),
  v.transform((table) => Object.fromEntries(Object.entries(table)) as Record<string, string>),
);

function checkEnvName(name: string): string | undefined {
  if (name === '') return 'a non-empty variable name';
  if (name.includes('=')) return "a variable name without '='";
  if (!NO_NUL(name)) return 'a variable name without NUL characters';
  if ((RESERVED_WORKER_ENV as readonly string[]).includes(name)) {
    return `a name other than ${RESERVED_WORKER_ENV.join(', ')} (the daemon sets them for the worker)`;
  }
  return undefined;
}

const path = (): v.GenericSchema<unknown, string> => text('a non-empty path');

const listenAddress = v.pipe(v.string(LISTEN_EXPECTED), v.check((value) => parseListenAddress(value) !== null, LISTEN_EXPECTED));

// Bounded so that the tail held in memory stays small: at most 1000 lines of at most 4 KiB each.
const CRASH_CONTEXT_LINES = 'an integer 0..1000 (lines; 0 keeps none)';
const crashContextLines = v.pipe(v.bigint(CRASH_CONTEXT_LINES), v.minValue(0n, CRASH_CONTEXT_LINES), v.maxValue(1000n, CRASH_CONTEXT_LINES), v.transform((value) => Number(value)));

// Exit statuses the worker can give: 0..255. An empty list is the default (none).
const EXIT_CODE = 'an exit code (an integer 0..255)';
const exitCodes = v.pipe(
  v.array(v.pipe(v.bigint(EXIT_CODE), v.minValue(0n, EXIT_CODE), v.maxValue(255n, EXIT_CODE), v.transform((value) => Number(value))), 'an array of exit codes, e.g. [75]'),
);

/** Every key, top level first, in the order `config show` prints them. */
export const FIELDS: readonly Field[] = [
  { key: 'working_dir', kind: 'path', schema: path() },
  { key: 'project', kind: 'text', schema: text('a non-empty string') },
  { key: 'socket_path', kind: 'path', schema: path() },
  { key: 'pid_file', kind: 'path', schema: path() },
  choice('log_level', ['debug', 'info', 'warn', 'error']),
  { key: 'worker.command', kind: 'argv', schema: argv },
  { key: 'worker.env', kind: 'env', schema: workerEnv },
  { key: 'worker.stop_timeout_ms', kind: 'integer', schema: milliseconds(0) },
  choice('worker.restart', ['always', 'on-failure']),
  { key: 'worker.crash_context_lines', kind: 'integer', schema: crashContextLines },
  { key: 'memory.min_available_bytes', kind: 'size', schema: size(1) },
  { key: 'memory.critical_threshold_bytes', kind: 'size', schema: size(1) },
  { key: 'memory.poll_interval_ms', kind: 'integer', schema: milliseconds(100) },
  { key: 'memory.node_kill_threshold_bytes', kind: 'size', schema: size(1) },
  { key: 'memory.psi_some_avg10', kind: 'number', schema: decimal('a number > 0 and <= 100 (percent)', (x) => x > 0 && x <= 100) },
  { key: 'memory.kill_grace_ms', kind: 'integer', schema: milliseconds(0) },
  { key: 'memory.cooldown_ms', kind: 'integer', schema: milliseconds(0) },
  { key: 'memory.worker_max_bytes', kind: 'size', schema: size(1) },
  choice('memory.hog_scope', ['tree', 'user']),
  { key: 'memory.hog_names', kind: 'names', schema: names },
  { key: 'restart.initial_backoff_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'restart.max_backoff_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'restart.backoff_multiplier', kind: 'number', schema: decimal('a number >= 1', (x) => x >= 1) },
  { key: 'restart.max_consecutive_restarts', kind: 'integer', schema: integer(1, 'an integer >= 1') },
  { key: 'restart.stable_after_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'restart.prevent_exit_codes', kind: 'exit-codes', schema: exitCodes },
  { key: 'restart.hold_exit_codes', kind: 'exit-codes', schema: exitCodes },
  { key: 'restart.hold_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'restart.hold_max_ms', kind: 'integer', schema: milliseconds(1) },
  // [health] (issue #17): every signal is off until its key is set; see docs/supervision.md.
  { key: 'health.stall_timeout_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'health.stall_cpu_ms', kind: 'integer', schema: milliseconds(0) },
  { key: 'health.heartbeat_file', kind: 'path', schema: path() },
  { key: 'health.heartbeat_timeout_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'health.probe_command', kind: 'argv', schema: argv },
  { key: 'health.probe_interval_ms', kind: 'integer', schema: milliseconds(100) },
  { key: 'health.probe_timeout_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'health.probe_failures', kind: 'integer', schema: integer(1, 'an integer >= 1') },
  { key: 'health.max_uptime_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'health.start_grace_ms', kind: 'integer', schema: milliseconds(0) },
  { key: 'logs.dir', kind: 'path', schema: path() },
  { key: 'logs.max_file_bytes', kind: 'size', schema: size(65536) },
  { key: 'logs.max_files', kind: 'integer', schema: integer(1, 'an integer >= 1') },
  { key: 'notify.command', kind: 'argv', schema: argv },
  choices('notify.events', NOTIFY_EVENT_KINDS),
  { key: 'notify.timeout_ms', kind: 'integer', schema: milliseconds(1) },
  { key: 'notify.min_interval_ms', kind: 'integer', schema: milliseconds(0) },
  // [cgroup] (issue #18): the worker tree in a cgroup v2 leaf of its own; see docs/supervision.md.
  choice('cgroup.mode', ['auto', 'off', 'required']),
  { key: 'cgroup.backstop_factor', kind: 'number', schema: decimal('a number > 1 (memory.max = worker_max_bytes times it)', (x) => x > 1) },
  // [metrics]: GET /metrics over HTTP, off until set (src/config/listen-address.ts).
  { key: 'metrics.listen', kind: 'text', schema: listenAddress },
];

export const FIELD_BY_KEY: ReadonlyMap<string, Field> = new Map(FIELDS.map((field) => [field.key, field]));

/** Section names ("worker", "memory", ...), in file order. */
export const SECTIONS: readonly string[] = [...new Set(FIELDS.flatMap((field) => (field.key.includes('.') ? [field.key.split('.')[0] as string] : [])))];

/** Keys of one section without the section prefix, or the top-level keys for ''. */
export function keysOf(section: string): string[] {
  return FIELDS.flatMap((field) => {
    const dot = field.key.indexOf('.');
    const owner = dot < 0 ? '' : field.key.slice(0, dot);
    return owner === section ? [field.key.slice(dot + 1)] : [];
  });
}
