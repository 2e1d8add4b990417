// A temp dir with one daemon's config, socket, pid file and logs, for tests that run the daemon in
// the background (`autopilotd start`) and drive it through the CLI; it is also their HOME. Every CLI
// the sandbox runs carries APD_SANDBOX=<id> in its environment; the daemons it starts and their workers inherit it,
// so cleanup() finds and ends each process the test caused by PID (plus the instance markers
// it saw), whoever its parent is by then, and removes the dir.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/control/client.js';
import type { Command, StatusData } from '../../src/control/protocol.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { findTree } from '../../src/os/process-tree.js';
import { CLI, cleanEnv, isAlive, killMarked, makeTempDir, REPO_ROOT, runCli, type CliResult, type TempDir } from './daemon.js';
import { waitFor } from './wait.js';
import { removeCgroupsOf } from './cgroup.js';

export const SANDBOX_ENV = 'APD_SANDBOX';

/** A worker that does nothing for a long time, and a stop grace short enough for tests. */
export const SLEEP_WORKER = '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n';

export interface SandboxOptions {
  /** TOML after the top-level keys; may open sections ([worker], [restart], ...), not [logs]. */
  body?: string;
  /** Lines for the [logs] table besides `dir` (e.g. max_file_bytes). */
  logs?: string;
  /** Default <dir>/run/d.sock: a directory the daemon must create. */
  socketPath?: string;
  pidFile?: string;
}

/** A CLI left running (`-f`, `--watch`): its output so far, and its exit once it and its output ended. */
export interface RunningCli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export class Sandbox {
  readonly id = randomBytes(6).toString('hex');
  readonly dir: string;
  readonly configPath: string;
  readonly socketPath: string;
  readonly pidFile: string;
  readonly logDir: string;
  readonly logPath: string;
  /** Daemon pids and instance ids seen, for cleanup. */
  readonly daemonPids = new Set<number>();
  readonly instanceIds = new Set<string>();
  private readonly temp: TempDir;

  constructor(opts: SandboxOptions = {}) {
    this.temp = makeTempDir('apd-');
    this.dir = this.temp.path;
    this.configPath = join(this.dir, 'daemon.toml');
    this.socketPath = opts.socketPath ?? join(this.dir, 'run', 'd.sock');
    this.pidFile = opts.pidFile ?? join(this.dir, 'd.pid');
    this.logDir = join(this.dir, 'logs');
    this.logPath = join(this.logDir, 'autopilotd.log');
    this.writeConfig(opts.body ?? SLEEP_WORKER, opts.logs ?? '');
  }

  /** (Re)writes the config file; socket, pid file and log dir stay where they are. */
  writeConfig(body: string, logs = ''): void {
    writeFileSync(this.configPath, [
      `working_dir = ${JSON.stringify(this.dir)}`,
      `socket_path = ${JSON.stringify(this.socketPath)}`,
      `pid_file = ${JSON.stringify(this.pidFile)}`,
      body,
      '[logs]',
      `dir = ${JSON.stringify(this.logDir)}`,
      logs,
      '',
    ].join('\n'));
  }

  /**
   * The environment of the sandbox's CLIs, and so of the daemons they start: the tag, and HOME the
   * sandbox dir unless `env` says otherwise, so that nothing they write under ~ (the CLI's location
   * note, ~/.autopilot/.client-location.json) reaches the developer's real home.
   */
  env(env: Record<string, string> = {}): Record<string, string> {
    return { HOME: this.dir, ...env, [SANDBOX_ENV]: this.id };
  }

  /** Runs the CLI with `--config <this config>` (unless `noConfigFlag`), the sandbox tag and HOME. */
  cli(args: string[], opts: { env?: Record<string, string>; noConfigFlag?: boolean; timeoutMs?: number } = {}): Promise<CliResult> {
    const full = opts.noConfigFlag ? args : [...args, '--config', this.configPath];
    const run: { env: Record<string, string>; timeoutMs?: number } = { env: { ...this.env(opts.env) } };
    if (opts.timeoutMs !== undefined) run.timeoutMs = opts.timeoutMs;
    return runCli(full, run);
  }

  /**
   * Starts the CLI as cli() runs it, into pipes, and leaves it running (`logs -f`, `events -f`,
   * `status --watch`); its output collects as it comes. It carries the tag: cleanup() ends it.
   */
  spawnCli(args: string[], opts: { env?: Record<string, string> } = {}): RunningCli {
    const child = spawn(process.execPath, [CLI, ...args, '--config', this.configPath], {
      cwd: REPO_ROOT, env: { ...cleanEnv(), ...this.env(opts.env) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    // On 'close', not 'exit': the exit can come before the last of the output has been read.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    const running: RunningCli = { child, stdout: '', stderr: '', exited };
    child.stdout!.on('data', (c: Buffer) => (running.stdout += c));
    child.stderr!.on('data', (c: Buffer) => (running.stderr += c));
    return running;
  }

  /**
   * Runs the CLI as cli() does with its stdout opened on `path` (`> /dev/full`); resolves once it
   * exited and its stderr is all in.
   */
  cliInto(path: string, args: string[], opts: { env?: Record<string, string> } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
    const fd = openSync(path, 'w');
    try {
      const child = spawn(process.execPath, [CLI, ...args, '--config', this.configPath], {
        cwd: REPO_ROOT, env: { ...cleanEnv(), ...this.env(opts.env) }, stdio: ['ignore', fd, 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c));
      return new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => resolve({ code, signal, stderr }));
      });
    } finally {
      closeSync(fd);
    }
  }

  /** `autopilotd start`; fails the test unless it exits 0. Returns the printed pids. */
  async start(opts: { env?: Record<string, string>; noConfigFlag?: boolean } = {}): Promise<{ pid: number; workerPid: number }> {
    const r = await this.cli(['start'], opts);
    this.remember();
    if (r.code !== 0) throw new Error(`autopilotd start exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nlog:\n${this.log()}`);
    const m = /^autopilotd started: pid (\d+), worker pid (\d+)\n$/.exec(r.stdout);
    if (!m) throw new Error(`unexpected output of autopilotd start: ${JSON.stringify(r.stdout)}`);
    const pid = Number(m[1]);
    this.daemonPids.add(pid);
    return { pid, workerPid: Number(m[2]) };
  }

  /** Notes the daemon pid and instance id currently on disk, so cleanup can end them. */
  remember(): void {
    const record = this.instanceRecord();
    if (record !== null) {
      this.daemonPids.add(record.pid);
      this.instanceIds.add(record.instance_id);
    }
  }

  instanceRecord(): { pid: number; instance_id: string; socket_path: string | null; config_path: string | null; start_ticks: number | null } | null {
    const path = `${this.pidFile}.instance`;
    if (!existsSync(path)) return null;
    return JSON.parse(readFileSync(path, 'utf8')) as ReturnType<Sandbox['instanceRecord']>;
  }

  /** One request over the socket, as the CLI sends it. */
  request(cmd: Command, timeoutMs = 15_000): Promise<unknown> {
    return sendRequest(this.socketPath, cmd, undefined, { timeoutMs });
  }

  /**
   * Runs `status` until the CLI has noted where this daemon is (src/cli/location-cache.ts, in the
   * sandbox's HOME): it notes only a config file at least 2 s old, so this waits on the clock.
   */
  async waitForNotedLocation(): Promise<void> {
    const note = join(this.dir, '.autopilot', '.client-location.json');
    await waitFor('the location to be noted', async () => {
      const r = await this.cli(['status']);
      if (r.code !== 0) throw new Error(`status exited ${r.code}: ${r.stderr}`);
      return existsSync(note) && readFileSync(note, 'utf8').includes(this.configPath);
    }, 30_000, 250);
  }

  status(): Promise<StatusData> {
    return this.request('status') as Promise<StatusData>;
  }

  /** The current log file ('' when there is none yet). */
  log(): string {
    // The file is missing for a moment while the daemon rotates it (rename, then a new one).
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  waitForLog(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    return waitFor(() => `a log line matching ${pattern} in ${this.logPath}\n--- log ---\n${this.log()}`, () => {
      const line = this.log().split('\n').find((l) => pattern.test(l));
      return line ?? null;
    }, timeoutMs);
  }

  /** Live (non-zombie) processes carrying this sandbox's tag: CLIs, daemons, workers. */
  processes(): { pid: number; argv: string[] }[] {
    const table = new ProcTable();
    const found: { pid: number; argv: string[] }[] = [];
    for (const p of table.scan()) {
      if (p.pid === process.pid || table.hasEnvMarker(p.pid, SANDBOX_ENV, this.id) !== true || !isAlive(p.pid)) continue;
      found.push({ pid: p.pid, argv: argvOf(p.pid) });
    }
    return found;
  }

  /** Running daemons of this sandbox (the CLIs that started them have exited or are `start` itself). */
  daemons(): number[] {
    return this.processes().filter((p) => p.argv.includes('--daemonized')).map((p) => p.pid);
  }

  /** SIGKILLs every tagged process and every process with a seen instance marker, then removes the dir. */
  async cleanup(): Promise<void> {
    this.remember();
    try {
      await waitFor(() => `sandbox ${this.id} processes to be gone: ${JSON.stringify(this.processes())}`, () => {
        const left = this.processes();
        for (const p of left) signal(p.pid, 'SIGKILL');
        for (const id of this.instanceIds) killMarked(id);
        return left.length === 0;
      }, 10_000, 50);
      // A daemon ended by SIGKILL leaves its private cgroup directory behind (helpers/cgroup.ts).
      await removeCgroupsOf(this.pidFile);
    } finally {
      this.temp.cleanup();
    }
  }
}

/** A sandbox ended and removed after the test, pass or fail. */
export function sandbox(t: { after(fn: () => Promise<void>): void }, opts: SandboxOptions = {}): Sandbox {
  const box = new Sandbox(opts);
  t.after(() => box.cleanup());
  return box;
}

/** Live processes of ours carrying AUTOPILOTD_INSTANCE=instanceId (a worker tree, escapees included). */
export function markedPids(instanceId: string): number[] {
  const identity = { root: null, pgid: null, instanceId, uid: process.getuid!(), protectedPids: new Set([process.pid]) };
  return findTree(new ProcTable(), identity).map((p) => p.pid).sort((a, b) => a - b);
}

export function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
  } catch {
    return []; // gone
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
