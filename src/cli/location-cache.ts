// Where a client command finds the daemon, without loading the configuration (issue #19, figures):
// reading the config stack (smol-toml, valibot, the schema) cost `status` ~20 ms per run. After a
// full load that had no problems, the CLI notes what it found, keyed by everything the load read:
// the config flags, every AUTOPILOTD_* variable, HOME, the cwd, the uid, and the identity of the
// config file it chose (device, inode, size, mtime, ctime, mode, owner; or its absence). A later
// command whose inputs are all the same takes the noted socket; anything else, and any daemon
// that does not answer there, goes the full way (find-daemon.ts), so the semantics are unchanged.
//
// The note lives in ~/.autopilot (a private directory, checked), in a file of ours (0600, checked
// on the open fd): whoever could write it could point `status` at their socket.

import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { checkPrivateDir, currentUid, ensurePrivateDir } from '../os/private-dir.js';
import { readPrivateFile } from '../os/private-file.js';
import type { ConfigFlags } from '../config/types.js';

/**
 * What the quick commands (status, metrics: quick-commands.ts) need of the configuration: where
 * the daemon listens. A note written with more fields (an older CLI) still reads as this.
 */
export interface NotedLocation {
  socket_path: string;
}

interface Entry {
  key: string;
  file: string;
  identity: string;
  found: NotedLocation;
}

/** Entries kept: one per configuration used lately (instances, --config files). */
const MAX_ENTRIES = 8;
/**
 * A file changed twice within one timestamp tick with the same size would look unchanged: a file
 * changed this recently is not noted (git's "racy clean" rule).
 */
const RACY_MS = 2_000;

const cacheDir = (home: string): string => join(home, '.autopilot');
const cachePath = (home: string): string => join(cacheDir(home), '.client-location.json');

/** The key: every input loadConfig reads, as text. */
function keyOf(flags: ConfigFlags, env: NodeJS.ProcessEnv, home: string, cwd: string): string {
  const vars = Object.keys(env).filter((name) => name.startsWith('AUTOPILOTD_')).sort().map((name) => [name, env[name]]);
  return JSON.stringify([currentUid(), home, cwd, flags, vars]);
}

/**
 * The file loadConfig reads for these inputs (file.ts chooseConfigFile, repeated here so that the
 * TOML modules stay unloaded); null when the choice is an error (an empty path: the full way).
 */
function chosenFile(flags: ConfigFlags, env: NodeJS.ProcessEnv, home: string, cwd: string): string | null {
  const given = flags.configPath ?? env.AUTOPILOTD_CONFIG;
  const text = given ?? (flags.instance === undefined ? '~/.autopilot/daemon.toml' : `~/.autopilot/${flags.instance}.toml`);
  if (text === '' || text.includes('\0')) return null;
  if (text === '~') return resolve(home);
  if (text.startsWith('~/')) return resolve(home, text.slice(2));
  return isAbsolute(text) ? resolve(text) : resolve(cwd, text);
}

/** The file's identity, 'missing', or null when it cannot be told (the full way then). */
function identityOf(file: string): { identity: string; changedMs: number } | null {
  try {
    // Not { bigint: true }: that costs a start more than the nanoseconds are worth beside RACY_MS.
    const st = statSync(file, { throwIfNoEntry: false });
    if (st === undefined) return { identity: 'missing', changedMs: 0 };
    const identity = [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, st.mode, st.uid].join(':');
    return { identity, changedMs: Math.max(st.mtimeMs, st.ctimeMs) };
  } catch {
    return null;
  }
}

function readEntries(home: string): Entry[] {
  try {
    if (checkPrivateDir(cacheDir(home)) !== null) return [];
    const read = readPrivateFile(cachePath(home));
    if (read === null || !('text' in read)) return [];
    const parsed = JSON.parse(read.text) as unknown;
    return Array.isArray(parsed) ? (parsed as Entry[]) : [];
  } catch {
    return []; // unreadable or garbled: the full way, and the next note replaces it
  }
}

interface Inputs {
  key: string;
  file: string;
  home: string;
}

function inputsOf(flags: ConfigFlags, env: NodeJS.ProcessEnv): Inputs | null {
  const home = homedir();
  const cwd = process.cwd();
  const file = chosenFile(flags, env, home, cwd);
  return file === null ? null : { key: keyOf(flags, env, home, cwd), file, home };
}

/** The noted location for these inputs when the config file is as it was, else null. */
export function notedLocation(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): NotedLocation | null {
  const inputs = inputsOf(flags, env);
  if (inputs === null) return null;
  const entry = readEntries(inputs.home).find((e) => e.key === inputs.key && e.file === inputs.file);
  if (entry === undefined) return null;
  const now = identityOf(inputs.file);
  return now !== null && now.identity === entry.identity ? entry.found : null;
}

/** Notes what a problem-free load found. Best effort: a failure only costs the next run time. */
export function noteLocation(flags: ConfigFlags, found: NotedLocation, env: NodeJS.ProcessEnv = process.env): void {
  try {
    const inputs = inputsOf(flags, env);
    if (inputs === null) return;
    const now = identityOf(inputs.file);
    if (now === null || Date.now() - now.changedMs < RACY_MS) return;
    const entry: Entry = { key: inputs.key, file: inputs.file, identity: now.identity, found };
    const old = readEntries(inputs.home).filter((e) => e.key !== inputs.key);
    const path = cachePath(inputs.home);
    ensurePrivateDir(dirname(path));
    const tmp = `${path}.${process.pid}`;
    try {
      writeFileSync(tmp, JSON.stringify([entry, ...old].slice(0, MAX_ENTRIES)), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
  } catch {
    // Not noted: the next command loads the configuration again.
  }
}
