// Configuration loading shared by every command (the command line itself: command-line.ts).

import { homedir } from 'node:os';
import type { ConfigFlags, LoadedConfig } from '../config/types.js';
import type { RuntimeDirPlan } from './runtime-dirs.js';
import type { ParsedCommand } from './command-line.js';

export type { ParsedCommand } from './command-line.js';

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
  // Whoever answers at the socket writes what these print (events, figures) as the daemon's.
  events: { socket_path: 'check' },
  metrics: { socket_path: 'check' },
};
