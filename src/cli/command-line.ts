// The command line: which command, its options, the worker argv after `--`. node:util parseArgs
// only splits the words (non-strict); every mistake is judged here, so that the user reads our
// message, with a "did you mean" where one is close, and never the parser's own text.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closestMatch } from '../config/suggest.js';
import { instanceNameProblem } from '../config/instance.js';
import { UsageError } from './exit-codes.js';
import { checkOptionValues } from './option-values.js';

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in messages, as the help writes it. */
  value?: string;
  /** Accepted, never suggested. */
  internal?: boolean;
}
type OptionTable = Record<string, OptionSpec>;

/** Options of every command, accepted before or after the command word. */
const GLOBAL_OPTIONS: OptionTable = {
  config: { type: 'string', value: 'PATH' },
  instance: { type: 'string', value: 'NAME' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
};

const COMMAND_OPTIONS: Record<string, OptionTable> = {
  start: {
    foreground: { type: 'boolean' },
    project: { type: 'string', value: 'NAME' },
    workdir: { type: 'string', value: 'DIR' },
    // Set by `start` on the detached daemon it spawns.
    daemonized: { type: 'boolean', internal: true },
  },
  stop: { timeout: { type: 'string', value: 'DURATION' } },
  status: { json: { type: 'boolean' }, watch: { type: 'boolean', short: 'w' }, interval: { type: 'string', value: 'DURATION' } },
  'restart-worker': {},
  'stop-worker': {},
  'start-worker': {},
  reload: {},
  logs: {
    lines: { type: 'string', short: 'n', value: 'N' }, follow: { type: 'boolean', short: 'f' },
    stream: { type: 'string', value: 'stdout|stderr' }, since: { type: 'string', value: 'WHEN' }, json: { type: 'boolean' },
  },
  events: { follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
  metrics: {},
  config: {},
  'install-service': { enable: { type: 'boolean' }, now: { type: 'boolean' }, print: { type: 'boolean' } },
  'uninstall-service': {},
  help: {},
  version: {},
};

/** Short names: the command each stands for. */
export const COMMAND_ALIASES: Readonly<Record<string, string>> = { restart: 'restart-worker' };

/** Commands that take words after them: what the word is, for messages. */
const POSITIONALS: Readonly<Record<string, string>> = { config: 'ACTION', help: 'COMMAND' };

export interface ParsedCommand {
  command: string;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** Everything after `--` (the worker argv for `start`). */
  rest: string[] | null;
}

export type CommandLine =
  | { kind: 'run'; parsed: ParsedCommand }
  /** Help for a command, or the main help (null). */
  | { kind: 'help'; command: string | null }
  | { kind: 'version' };

interface Options {
  values: Record<string, string | boolean>;
  positionals: string[];
}

export function parseCommandLine(argv: string[]): CommandLine {
  const dashDash = argv.indexOf('--');
  const args = dashDash === -1 ? argv : argv.slice(0, dashDash);
  const rest = dashDash === -1 ? null : argv.slice(dashDash + 1);
  const at = commandIndex(args);
  const word = at === -1 ? undefined : args[at]!;
  const command = word === undefined ? undefined : commandNamed(word);
  const leading = readOptions(args.slice(0, at === -1 ? args.length : at), GLOBAL_OPTIONS, { before: command });
  if (word === undefined || command === undefined) return withoutCommand(args, leading, rest);
  const own = readOptions(args.slice(at + 1), { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[command] }, { word });
  const values = { ...leading.values, ...own.values };
  if (command === 'help') return helpCommand(own.positionals, rest);
  if (values.help === true) return { kind: 'help', command };
  if (values.version === true || command === 'version') return { kind: 'version' };
  checkWords(word, command, own.positionals, rest);
  const instance = values.instance;
  if (typeof instance === 'string' && instanceNameProblem(instance) !== null) throw new UsageError(`${word}: --instance: ${instanceNameProblem(instance)}`, word);
  // Values too, before any command loads the configuration: a usage error stays exit 64.
  checkOptionValues(command, values);
  return { kind: 'run', parsed: { command, values, positionals: own.positionals, rest } };
}

/**
 * Where the command word is: the first word that is neither an option nor the value of a global
 * option before it; -1 when there is none.
 */
function commandIndex(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-') || arg === '-') return i;
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    if (name !== null && Object.hasOwn(GLOBAL_OPTIONS, name) && GLOBAL_OPTIONS[name]!.type === 'string') i++;
  }
  return -1;
}

/** The command a word names (an alias resolved); throws for a word that names none. */
function commandNamed(word: string): string {
  const aliased = Object.hasOwn(COMMAND_ALIASES, word) ? COMMAND_ALIASES[word]! : word;
  if (Object.hasOwn(COMMAND_OPTIONS, aliased)) return aliased;
  const near = closestMatch(word, [...Object.keys(COMMAND_OPTIONS), ...Object.keys(COMMAND_ALIASES)]);
  throw new UsageError(`unknown command '${word}'${near === undefined ? '' : `; did you mean '${near}'?`}`);
}

/** `autopilotd`, `autopilotd -V`, `autopilotd --config P` and the like: no command word. */
function withoutCommand(args: string[], leading: Options, rest: string[] | null): CommandLine {
  if (rest !== null) throw new UsageError('no command before --; the worker argv goes after start: autopilotd start -- <argv...>');
  if (leading.values.help === true || args.length === 0) return { kind: 'help', command: null };
  if (leading.values.version === true) return { kind: 'version' };
  throw new UsageError('no command given (autopilotd --help lists them)');
}

/** `help` (the main help) or `help <command>`. */
function helpCommand(positionals: string[], rest: string[] | null): CommandLine {
  if (rest !== null) throw new UsageError('help takes no arguments after --');
  if (positionals.length > 1) throw new UsageError(`help: one command at a time, got '${positionals.join(' ')}'`);
  const [about] = positionals;
  if (about === undefined) return { kind: 'help', command: null };
  const command = commandNamed(about);
  return { kind: 'help', command: command === 'help' || command === 'version' ? null : command };
}

/** Words after the command and after `--`: only where the command takes them. */
function checkWords(word: string, command: string, positionals: string[], rest: string[] | null): void {
  if (positionals.length > 0 && !Object.hasOwn(POSITIONALS, command)) {
    const stray = positionals[0]!;
    const near = closestMatch(stray, suggestable(COMMAND_OPTIONS[command]!));
    throw new UsageError(`${word}: unexpected argument '${stray}'${near === undefined ? '' : `; did you mean '--${near}'?`}`, word);
  }
  if (rest !== null && command !== 'start') throw new UsageError(`${word} takes no arguments after --`, word);
  if (rest !== null && rest.length === 0) throw new UsageError('start: nothing after --; give the worker command or leave out --', word);
}

interface Place {
  /** The command word the options follow; absent for those before it. */
  word?: string;
  /** The command the options before it go with, once known. */
  before?: string | undefined;
}

/** Reads `args` as options of `table` (and positionals); throws a UsageError for any mistake. */
function readOptions(args: string[], table: OptionTable, place: Place): Options {
  const { tokens } = parseArgs({ args, options: parseArgsTable(table), strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const prefix = place.word === undefined ? '' : `${place.word}: `;
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    const spec = token.rawName.startsWith('--') && Object.hasOwn(table, token.name) ? table[token.name] : shortSpec(table, token.name, token.rawName);
    if (spec === undefined) throw new UsageError(prefix + unknownOption(token.rawName, args[token.index]!, table, place), helpTarget(place));
    values[token.name] = optionValue(token, spec, prefix, place);
  }
  return { values, positionals };
}

/** A known option given by its short name (parseArgs then names it by its long one). */
function shortSpec(table: OptionTable, name: string, rawName: string): OptionSpec | undefined {
  if (rawName.startsWith('--') || !Object.hasOwn(table, name)) return undefined;
  const spec = table[name]!;
  return spec.short !== undefined && rawName === `-${spec.short}` ? spec : undefined;
}

type OptionToken = { name: string; rawName: string; value?: string | undefined; inlineValue?: boolean | undefined };

function optionValue(token: OptionToken, spec: OptionSpec, prefix: string, place: Place): string | boolean {
  if (spec.type === 'boolean') {
    if (token.value !== undefined) throw new UsageError(`${prefix}${token.rawName} takes no value, got '${token.rawName}=${token.value}'`, helpTarget(place));
    return true;
  }
  const needs = `${prefix}${token.rawName} needs a value (${token.rawName} ${spec.value ?? 'VALUE'})`;
  if (token.value === undefined) throw new UsageError(needs, helpTarget(place));
  // parseArgs takes the next word whatever it is: `--config --json` is a value forgotten, mostly.
  if (token.inlineValue !== true && token.value.startsWith('-') && token.value !== '-') {
    throw new UsageError(`${needs}, not the option '${token.value}'; if that is the value, write --${token.name}=${token.value}`, helpTarget(place));
  }
  return token.value;
}

/** "unknown option", with the option meant when one is close, or the command it belongs to. */
function unknownOption(rawName: string, word: string, table: OptionTable, place: Place): string {
  // A short option out of a group (`-fx`, `-f=1`) is shown with the word it came from.
  const said = `unknown option '${rawName}'${word === rawName || word.startsWith(`${rawName}=`) ? '' : ` in '${word}'`}`;
  if (!rawName.startsWith('--')) return said;
  const name = rawName.slice(2);
  if (place.before !== undefined && Object.hasOwn(COMMAND_OPTIONS[place.before]!, name)) {
    return `'${rawName}' is an option of ${place.before}: put it after the command (autopilotd ${place.before} ${rawName})`;
  }
  const near = closestMatch(name, suggestable(table));
  if (near !== undefined) return `${said}; did you mean '--${near}'?`;
  const owners = Object.keys(COMMAND_OPTIONS).filter((c) => Object.hasOwn(COMMAND_OPTIONS[c]!, name) && !COMMAND_OPTIONS[c]![name]!.internal);
  return owners.length === 0 ? said : `${said} (an option of ${owners.join(', ')})`;
}

function suggestable(table: OptionTable): string[] {
  return Object.keys(table).filter((name) => table[name]!.internal !== true);
}

/** The command whose help a usage error points to (null: the main help). */
function helpTarget(place: Place): string | null {
  const word = place.word ?? place.before ?? null;
  return word === 'help' || word === 'version' ? null : word;
}

function parseArgsTable(table: OptionTable): ParseArgsConfig['options'] {
  return Object.fromEntries(Object.entries(table).map(([name, spec]) => [name, spec.short === undefined ? { type: spec.type } : { type: spec.type, short: spec.short }]));
}
