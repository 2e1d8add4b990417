// Helpers for tests that run real processes: start fixtures, wait on conditions with deadlines,
// look processes up in /proc independently of the code under test, and end what was started.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

let counter = 0;
export function uniqueInstanceId(label: string): string {
  return `test-${label}-${process.pid}-${++counter}-${Date.now()}`;
}

/** Polls `condition` every intervalMs until it holds; on timeout fails naming what was awaited. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A minimal /proc/<pid>/stat reading, separate from ProcTable so tests do not check it with itself. */
export interface StatView {
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  startTime: string;
}

export function statOf(pid: number): StatView | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return null;
    throw err;
  }
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  return {
    comm: text.slice(text.indexOf('(') + 1, close),
    state: f[0] ?? '',
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    sid: Number(f[3]),
    startTime: f[19] ?? '',
  };
}

/** The pid and start time of a running process, read independently of ProcTable. */
export function processKey(pid: number): { pid: number; startTimeTicks: number } {
  const stat = statOf(pid);
  if (stat === null) throw new Error(`pid ${pid} is not running`);
  return { pid, startTimeTicks: Number(stat.startTime) };
}

/** A process as first seen, so a later check cannot be fooled by its pid being reused. */
export interface Seen {
  pid: number;
  startTime: string;
}

export function see(pid: number): Seen {
  const stat = statOf(pid);
  if (stat === null) throw new Error(`pid ${pid} is not running`);
  return { pid, startTime: stat.startTime };
}

/** Alive = same process still there and not a zombie. */
export function isAlive(seen: Seen): boolean {
  const stat = statOf(seen.pid);
  return stat !== null && stat.startTime === seen.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

export function hasMarker(pid: number, instanceId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`AUTOPILOTD_INSTANCE=${instanceId}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return false; // gone: nothing left to clean up
    throw err;
  }
}

/** SIGKILL a process this test started, if it is still that process. */
export function killSeen(seen: Seen): void {
  if (!isAlive(seen)) return;
  try {
    process.kill(seen.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export interface StartedFixture<T> {
  child: ChildProcess;
  pid: number;
  /** The JSON line the fixture printed once all its processes were started. */
  report: T;
  scratchDir: string;
  exited: Promise<unknown>;
  /** Kills the fixture's group, then every pid in `extra` still carrying the marker; removes scratchDir. */
  cleanup(extra?: number[]): Promise<void>;
}

/**
 * Runs a fixture as group and session leader (detached), with the marker in its environment,
 * and waits for its one-line JSON report.
 */
export async function startFixture<T>(script: string, instanceId: string, extraEnv: Record<string, string> = {}): Promise<StartedFixture<T>> {
  const scratchDir = mkdtempSync(join(tmpdir(), 'autopilotd-os-'));
  const child = spawn(join(FIXTURES_DIR, script), [scratchDir], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...extraEnv, AUTOPILOTD_INSTANCE: instanceId },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`spawn ${script} failed`);
  // The test is the worker's parent: Node reaps it on exit, so it never lingers as a zombie.
  const exited = once(child, 'exit');
  const cleanup = async (extra: number[] = []): Promise<void> => {
    killGroup(pid);
    for (const p of extra) {
      if (hasMarker(p, instanceId)) killPid(p);
    }
    child.stdout?.destroy();
    await exited;
    rmSync(scratchDir, { recursive: true, force: true });
  };
  try {
    const first = await firstLine(child, script);
    return { child, pid, report: JSON.parse(first) as T, scratchDir, exited, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function firstLine(child: ChildProcess, script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const done = (): void => {
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.off('line', onLine);
      lines.close();
    };
    const onLine = (line: string): void => {
      done();
      resolve(line);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new Error(`${script} exited (${String(code ?? signal)}) before reporting its pids`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after 10000 ms waiting for ${script} to report its pids`));
    }, 10_000);
    lines.on('line', onLine);
    child.on('exit', onExit);
  });
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** A same-user process outside any worker tree: own group, no marker. */
export function startBystander(): { seen: Seen; child: ChildProcess; stop: () => Promise<void> } {
  const env = { ...process.env };
  delete env.AUTOPILOTD_INSTANCE;
  const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore', env });
  const pid = child.pid;
  if (pid === undefined) throw new Error('spawn sleep failed');
  const exited = once(child, 'exit');
  return {
    seen: see(pid),
    child,
    stop: async () => {
      killGroup(pid);
      await exited;
    },
  };
}

/**
 * Spawns `argv` on pid `pid` by steering the kernel's next pid (/proc/sys/kernel/ns_last_pid; root
 * only). Other processes fork too (tests run in parallel), so each miss is killed and it tries
 * again; null when every attempt missed. The pid must be free (no process, group or session on it).
 */
export async function spawnOnPid(pid: number, argv: [string, ...string[]], opts: SpawnOptions, attempts = 50): Promise<ChildProcess | null> {
  for (let i = 0; i < attempts; i++) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const child = spawn(argv[0], argv.slice(1), opts);
    if (child.pid === undefined) throw new Error(`spawn ${argv[0]} failed`);
    if (child.pid === pid) return child;
    const exited = once(child, 'exit');
    // A detached miss leads its own group: whatever it forked already goes with it.
    if (opts.detached === true) killGroup(child.pid);
    else child.kill('SIGKILL');
    await exited;
  }
  return null;
}
