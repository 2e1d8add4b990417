// Real daemons for integration tests: each runs the built CLI on a temp config in its own temp dir,
// and cleanup ends everything it started (the daemon by PID, its worker tree by instance marker).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { findTree } from '../../src/os/process-tree.js';
import { waitFor } from './wait.js';
import { deadPrivateDirsOf, privateDirOfDaemon, removeCgroupDir } from './cgroup.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'dist/bin/autopilotd.cjs');
export const FIXTURES = join(REPO_ROOT, 'test/fixtures');

export interface TempDir {
  path: string;
  cleanup(): void;
}

/** A short temp dir (socket paths are limited to 107 bytes). */
export function makeTempDir(prefix = 'apd-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A config file in `dir` with the daemon's files inside it. `body` is TOML appended after the
 * top-level keys, so it may open sections ([worker], [memory], ...).
 */
export function writeConfig(dir: string, body: string, topLevel = ''): string {
  const path = join(dir, 'daemon.toml');
  writeFileSync(path, [
    `working_dir = ${JSON.stringify(dir)}`,
    `socket_path = ${JSON.stringify(join(dir, 'd.sock'))}`,
    `pid_file = ${JSON.stringify(join(dir, 'd.pid'))}`,
    topLevel,
    body,
    '',
  ].join('\n'));
  return path;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return runProgram(process.execPath, [CLI, ...args], {
    env: { ...cleanEnv(), ...opts.env }, cwd: opts.cwd ?? REPO_ROOT, timeoutMs: opts.timeoutMs ?? 30_000, what: `autopilotd ${args.join(' ')}`,
  });
}

/** Runs `program` to completion, collecting its output; SIGKILLed and rejected past `timeoutMs`. */
export function runProgram(program: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number; what?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.what ?? `${program} ${args.join(' ')}`} did not finish in ${opts.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The test runner's environment minus anything that would steer the daemon under test. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('AUTOPILOTD_') && k !== 'JOURNAL_STREAM' && k !== 'NOTIFY_SOCKET') env[k] = v;
  }
  return env;
}

export class ForegroundDaemon {
  /** Lines of the daemon's stderr: its log. */
  readonly lines: string[] = [];
  /** The daemon's stdout: in the foreground, the worker's stdout passes through to it. */
  stdout = '';
  private pending = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  instanceId: string | null = null;
  /** Set once the daemon exited and its output was read to the end. */
  closed = false;

  constructor(readonly child: ChildProcess, readonly configPath: string) {
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = this.pending + chunk.toString('utf8');
      const parts = text.split('\n');
      this.pending = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        const m = / instance=(\S+)/.exec(line);
        if (m && this.instanceId === null) this.instanceId = m[1]!;
      }
    });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.on('close', () => (this.closed = true));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (from index `from`) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs = 15_000, from = 0): Promise<string> {
    const what = (): string => `a daemon log line matching ${pattern}\n--- log so far ---\n${this.lines.join('\n')}`;
    return waitFor(what, () => {
      const line = this.lines.slice(from).find((l) => pattern.test(l));
      if (line === undefined && this.closed) {
        // No point waiting out the deadline: a dead daemon logs nothing more.
        throw new Error(`the daemon exited (${this.child.exitCode ?? this.child.signalCode}) before ${what()}`);
      }
      return line;
    }, timeoutMs);
  }

  /** All log lines matching `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.lines.filter((l) => pattern.test(l));
  }

  /**
   * Ends the daemon by PID and every process carrying its instance marker; waits until gone. A
   * daemon ended by SIGKILL leaves its private cgroup directory: removed too (helpers/cgroup.ts).
   */
  async cleanup(): Promise<void> {
    const running = this.child.exitCode === null && this.child.signalCode === null;
    const own = running ? privateDirOfDaemon(this.pid) : null;
    if (running) this.child.kill('SIGKILL');
    await this.exited;
    killMarked(this.instanceId);
    // Its own, and any its pid file's earlier daemons left (never a live daemon's).
    const dirs = new Set([...(own === null ? [] : [own]), ...pidFileOf(this.configPath).flatMap(deadPrivateDirsOf)]);
    for (const dir of dirs) await removeCgroupDir(dir);
  }
}

/** The pid_file a test config names (to find its daemon's cgroup directory), if it names one. */
function pidFileOf(configPath: string): string[] {
  try {
    const m = /^pid_file = ("[^"\n]*")$/m.exec(readFileSync(configPath, 'utf8'));
    return m === null ? [] : [JSON.parse(m[1]!) as string];
  } catch {
    return [];
  }
}

/** SIGKILLs every process of ours carrying AUTOPILOTD_INSTANCE=id (a test's leftovers, if any). */
export function killMarked(instanceId: string | null): number[] {
  if (instanceId === null) return [];
  const table = new ProcTable();
  const identity = { root: null, pgid: null, instanceId, uid: process.getuid!(), protectedPids: new Set([process.pid]) };
  const left = findTree(table, identity).map((p) => p.pid);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return left;
}

/**
 * Starts `autopilotd start --foreground --config <path> [args]` and waits until it is ready.
 * `nodePath` runs the daemon through another path to node (e.g. a symlink that gives it a name).
 */
export async function startForeground(configPath: string, args: string[] = [], env: Record<string, string> = {}, nodePath = process.execPath): Promise<ForegroundDaemon> {
  const child = spawn(nodePath, [CLI, 'start', '--foreground', '--config', configPath, ...args], {
    env: { ...cleanEnv(), ...env },
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const daemon = new ForegroundDaemon(child, configPath);
  child.stdout!.on('data', (c: Buffer) => (daemon.stdout += c.toString('utf8')));
  await daemon.waitForLine(/daemon ready/);
  return daemon;
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** What test/fixtures/tree-worker.sh prints once every process of its tree is up. */
export interface TreeReport {
  worker: number;
  children: number[];
  setsidParent: number;
  setsid: number;
  daemon: number;
  termIgnorer: number;
}

/** Every pid of a tree-worker.sh report: 25 processes. */
export function treeReportPids(r: TreeReport): number[] {
  return [r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer];
}

export interface DaemonInTempDir {
  daemon: ForegroundDaemon;
  dir: string;
  configPath: string;
}

/**
 * A foreground daemon on `writeConfig(dir, body, topLevel)` in a fresh temp dir. After the test it
 * is ended (and its worker tree by marker) before its dir is removed, whatever happened.
 */
export async function daemonInTempDir(
  t: TestContext,
  body: string,
  opts: { topLevel?: string; args?: string[]; start?: (configPath: string) => Promise<ForegroundDaemon> } = {},
): Promise<DaemonInTempDir> {
  const dir = makeTempDir();
  let daemon: ForegroundDaemon | null = null;
  t.after(async () => {
    await daemon?.cleanup();
    dir.cleanup();
  });
  const configPath = writeConfig(dir.path, body, opts.topLevel ?? '');
  daemon = await (opts.start ?? ((c: string) => startForeground(c, opts.args ?? [])))(configPath);
  return { daemon, dir: dir.path, configPath };
}
