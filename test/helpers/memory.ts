// Helpers for memory-guard tests: memory hogs started by the test (each in its own process group,
// ended by that group), the machine's MemAvailable for thresholds relative to it, `status --json`,
// and a daemon started under a chosen process name.

import { spawn, type ChildProcess } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusData } from '../../src/control/protocol.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { FIXTURES, ForegroundDaemon, cleanEnv, runCli, startForeground } from './daemon.js';
import { waitFor } from './wait.js';

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;
export const HOG = join(FIXTURES, 'hog.mjs');
export const MEMORY_WORKER = join(FIXTURES, 'memory-worker.mjs');

/** MemAvailable now, from /proc/meminfo. */
export function memAvailableBytes(): number {
  return new ProcTable().memInfo().availableBytes;
}

/** A TOML size string for a whole number of MiB at least `bytes`: "12345MiB". */
export function mibText(bytes: number): string {
  return `${Math.ceil(bytes / MIB)}MiB`;
}

/** A process name (comm, <= 15 bytes) no other process on the machine has: `prefix` + random hex. */
export function uniqueComm(prefix: string): string {
  const hex = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0');
  return `${prefix}${hex}`.slice(0, 15);
}

export interface Hog {
  child: ChildProcess;
  pid: number;
  /** Everything the hog printed. */
  readonly output: () => string;
  /** Resolves once the hog has allocated its memory; fails if it exits first. */
  ready(timeoutMs?: number): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILLs the hog's process group (it is the group leader) and waits for its exit. */
  kill(): Promise<void>;
}

export interface HogOptions {
  uid?: number;
  gid?: number;
  env?: Record<string, string>;
}

/**
 * Starts test/fixtures/hog.mjs with `args` outside any daemon's tree: a new session and process
 * group, no instance marker (unless `env` gives one).
 */
export function startHog(args: string[], opts: HogOptions = {}): Hog {
  const child = spawn(process.execPath, [HOG, ...args], {
    detached: true,
    cwd: '/',
    env: { ...cleanEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  if (child.pid === undefined) throw new Error(`spawning ${HOG} failed`);
  const pid = child.pid;
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  return {
    child,
    pid,
    output: () => output,
    ready: (timeoutMs = 15_000) => waitFor(
      () => `hog ${pid} to print "ready" (output: ${JSON.stringify(output)})`,
      () => {
        if (done) throw new Error(`hog ${pid} exited before it was ready; output: ${JSON.stringify(output)}`);
        return output.includes(`ready ${pid}`);
      },
      timeoutMs,
    ).then(() => undefined),
    exited,
    kill: async () => {
      if (done) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      await exited;
    },
  };
}

/** `autopilotd status --json` against the daemon of `configPath`. */
export async function statusJson(configPath: string): Promise<StatusData> {
  const r = await runCli(['status', '--json', '--config', configPath]);
  if (r.code !== 0) throw new Error(`autopilotd status --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusData;
}

/**
 * Like startForeground, but the daemon's node runs through a symlink named `comm` in `dir`, so the
 * daemon's process name (comm) is `comm`: a name hog_names can match without matching anything else.
 */
export async function startForegroundNamed(dir: string, comm: string, configPath: string): Promise<ForegroundDaemon> {
  const exe = join(dir, comm);
  symlinkSync(process.execPath, exe);
  return startForeground(configPath, [], {}, exe);
}

/**
 * Resolves with the index just past the n-th debug "memory level=..." sample line logged at or
 * after index `from`: proof that the guard looked n more times.
 */
export async function waitForSamples(daemon: ForegroundDaemon, n: number, from: number, timeoutMs = 15_000): Promise<number> {
  return waitFor(
    () => `${n} memory samples after log line ${from}\n--- log so far ---\n${daemon.lines.join('\n')}`,
    () => {
      let seen = 0;
      for (let i = from; i < daemon.lines.length; i++) {
        if (/ memory level=/.test(daemon.lines[i]!) && ++seen === n) return i + 1;
      }
      return undefined;
    },
    timeoutMs,
  );
}

/** Resolves with the first line of the worker output (the daemon's stdout) matching `pattern`. */
export function waitForOutput(daemon: ForegroundDaemon, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  return waitFor(
    () => `worker output matching ${pattern}\n--- output so far ---\n${daemon.stdout}\n--- log ---\n${daemon.lines.join('\n')}`,
    () => pattern.exec(daemon.stdout) ?? undefined,
    timeoutMs,
  );
}


