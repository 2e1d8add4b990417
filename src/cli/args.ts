// Command-line parsing and configuration loading shared by every command.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { homedir } from 'node:os';
import type { ConfigFlags, LoadedConfig } from '../config/types.js';
import type { RuntimeDirPlan } from './runtime-dirs.js';
import { UsageError } from './exit-codes.js';
import { instanceNameProblem } from '../config/instance.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON: Options = {
  config: { type: 'string' },
  instance: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const COMMAND_OPTIONS: Record<string, Options> = {
  start: {
    foreground: { type: 'boolean' },
    project: { type: 'string' },
    workdir: { type: 'string' },
    // Internal: set by `start` on the detached daemon it spawns.
    daemonized: { type: 'boolean' },
  },
  stop: { timeout: { type: 'string' } },
  status: { json: { type: 'boolean' } },
  'restart-worker': {},
  'stop-worker': {},
  'start-worker': {},
  reload: {},
  logs: { lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' } },
  config: {},
  'install-service': { enable: { type: 'boolean' }, now: { type: 'boolean' }, print: { type: 'boolean' } },
  'uninstall-service': {},
};

export interface ParsedCommand {
  command: string;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** Everything after `--` (the worker argv for `start`). */
  rest: string[] | null;
}

export function parseCommandLine(argv: string[]): ParsedCommand | 'help' | 'version' {
  const [first, ...tail] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') return 'help';
  if (first === '-V' || first === '--version' || first === 'version') return 'version';
  const options = COMMAND_OPTIONS[first];
  if (options === undefined) {
    throw new UsageError(first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`);
  }
  const dashDash = tail.indexOf('--');
  const args = dashDash === -1 ? tail : tail.slice(0, dashDash);
  const rest = dashDash === -1 ? null : tail.slice(dashDash + 1);
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: first === 'config', strict: true });
  } catch (err) {
    // node:util says e.g. "Unknown option '--x'. To specify a positional argument starting with a '-' ...".
    throw new UsageError(`${first}: ${(err as Error).message.split('. ')[0]}`);
  }
  if (rest !== null && first !== 'start') throw new UsageError(`${first} takes no arguments after --`);
  if (rest !== null && rest.length === 0) throw new UsageError('start: nothing after --; give the worker command or leave out --');
  const instance = parsed.values.instance;
  if (typeof instance === 'string' && instanceNameProblem(instance) !== null) throw new UsageError(`${first}: --instance: ${instanceNameProblem(instance)}`);
  return { command: first, values: parsed.values as ParsedCommand['values'], positionals: parsed.positionals, rest };
}

/**
 * Loads the configuration exactly as the daemon does, so every command finds the same daemon;
 * throws ConfigError (exit 78) on any problem. Commands that only reach a running daemon use
 * loadToFindDaemon (find-daemon.ts), which lets them past a file broken since the daemon started.
 */
export async function loadForCommand(p: ParsedCommand): Promise<LoadedConfig> {
  const { loadConfig } = await import('../config/load.js');
  return loadConfig({ flags: configFlagsOf(p), env: process.env, homeDir: homedir(), cwd: process.cwd() });
}

/** The command line's part of the configuration (the top layer). */
export function configFlagsOf(p: ParsedCommand): ConfigFlags {
  const flags: ConfigFlags = {};
  if (typeof p.values.config === 'string') flags.configPath = p.values.config;
  if (typeof p.values.instance === 'string') flags.instance = p.values.instance;
  if (typeof p.values.project === 'string') flags.project = p.values.project;
  if (typeof p.values.workdir === 'string') flags.workdir = p.values.workdir;
  if (p.rest !== null) flags.workerCommand = p.rest;
  return flags;
}

/** Refuses (exit 78) what a client command would trust and another user could replace. */
export async function assertClientDirs(p: ParsedCommand, loaded: LoadedConfig): Promise<void> {
  const plan = CLIENT_DIR_CHECKS[p.command];
  if (plan === undefined) return;
  const { assertRuntimeDirs } = await import('./runtime-dirs.js');
  assertRuntimeDirs(loaded, plan);
}

/**
 * What a client command trusts, checked before it is used (exit 78 when unsafe): the socket's
 * directory, since whoever can replace the socket answers `status` and "stops" on `stop`; for
 * `logs`, also logs.dir, whose files it prints. `start` and `config` check for themselves.
 */
const CLIENT_DIR_CHECKS: Record<string, RuntimeDirPlan | undefined> = {
  stop: { socket_path: 'check' },
  status: { socket_path: 'check' },
  'restart-worker': { socket_path: 'check' },
  'stop-worker': { socket_path: 'check' },
  'start-worker': { socket_path: 'check' },
  reload: { socket_path: 'check' },
  logs: { socket_path: 'check', 'logs.dir': 'check' },
};
