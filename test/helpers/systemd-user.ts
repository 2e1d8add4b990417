// A real, private systemd user manager for tests (#16). These machines have systemd but not as
// PID 1; `systemd --user` runs all the same once /run/systemd/system exists (what tells systemd's
// tools that systemd is booted) and XDG_RUNTIME_DIR is a private directory. Everything of it lives
// in one temp dir: runtime dir, XDG config/data/state homes and HOME, so the units it reads are the
// test's and `%h` is the test's home.
//
// One manager at a time on the machine: two would both take the same cgroup tree for theirs and
// kill each other's services, so the manager is started under an exclusive lock, held by a
// `flock(1)` child that exits when our pipe to it closes, even if this process is SIGKILLed.
//
// Every process the manager starts inherits APD_SYSTEMD_TEST=<id> (the manager passes its own
// environment to its units, and the daemon to its worker): stop() ends the manager by PID, then
// SIGKILLs whatever still carries the tag, escapees included, and removes the temp dir.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { isAlive, runProgram } from './daemon.js';
import { waitFor } from './wait.js';

export const SYSTEMD_TEST_ENV = 'APD_SYSTEMD_TEST';
const SYSTEMD = '/lib/systemd/systemd';
const LOCK_FILE = join(tmpdir(), 'autopilotd-test-user-manager.lock');

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class UserManager {
  readonly id = randomBytes(6).toString('hex');
  readonly root: string;
  readonly home: string;
  readonly unitDir: string;
  readonly env: Record<string, string>;
  private manager: ChildProcess | null = null;
  private lock: ChildProcess | null = null;

  constructor() {
    this.root = mkdtempSync(join(tmpdir(), 'apd-sd-'));
    this.home = join(this.root, 'home');
    const runtime = join(this.root, 'run');
    mkdirSync(runtime, { mode: 0o700 });
    for (const dir of ['home', 'config', 'data', 'state']) mkdirSync(join(this.root, dir));
    this.unitDir = join(this.root, 'config', 'systemd', 'user');
    this.env = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: this.home,
      USER: userName(),
      LOGNAME: userName(),
      LANG: 'C.UTF-8',
      XDG_RUNTIME_DIR: runtime,
      XDG_CONFIG_HOME: join(this.root, 'config'),
      XDG_DATA_HOME: join(this.root, 'data'),
      XDG_STATE_HOME: join(this.root, 'state'),
      [SYSTEMD_TEST_ENV]: this.id,
    };
  }

  get pid(): number {
    return this.manager?.pid ?? 0;
  }

  /** Starts the manager; resolves with why it cannot run, or null once `systemctl --user` answers. */
  async start(): Promise<string | null> {
    if (!existsSync(SYSTEMD)) return `${SYSTEMD} is not installed`;
    try {
      mkdirSync('/run/systemd/system', { recursive: true });
    } catch (err) {
      return `cannot create /run/systemd/system (${(err as Error).message}): systemd's tools would take systemd for not booted`;
    }
    const locked = await this.takeLock();
    if (locked !== null) return locked;
    const log = openSync(join(this.root, 'manager.log'), 'a');
    this.manager = spawn(SYSTEMD, ['--user'], { env: this.env, cwd: this.home, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    const exited = new Promise<void>((resolve) => this.manager!.once('exit', () => resolve()));
    try {
      await Promise.race([
        waitFor('systemctl --user is-system-running to answer', async () => {
          const r = await this.systemctl(['is-system-running']);
          return /^(running|degraded)$/m.test(r.stdout);
        }, 30_000, 100),
        exited.then(() => { throw new Error('exited'); }),
      ]);
    } catch (err) {
      return `systemd --user did not come up (${(err as Error).message}); its log:\n${this.managerLog()}`;
    }
    return null;
  }

  managerLog(): string {
    try {
      return readFileSync(join(this.root, 'manager.log'), 'utf8');
    } catch {
      return '';
    }
  }

  systemctl(args: string[], timeoutMs = 120_000): Promise<ToolRun> {
    return this.run('systemctl', ['--user', ...args], timeoutMs);
  }

  /** The CLI under test, with this manager's environment (HOME, XDG_*). */
  cli(cliPath: string, args: string[], timeoutMs = 120_000): Promise<ToolRun> {
    return this.run(process.execPath, [cliPath, ...args], timeoutMs);
  }

  run(program: string, args: string[], timeoutMs = 120_000): Promise<ToolRun> {
    return runProgram(program, args, { env: this.env, cwd: this.home, timeoutMs });
  }

  /** `systemctl --user show UNIT -p A,B`, as a record. */
  async show(unit: string, props: string[]): Promise<Record<string, string>> {
    const r = await this.systemctl(['show', unit, '-p', props.join(',')]);
    if (r.code !== 0) throw new Error(`systemctl --user show ${unit} exited ${r.code}: ${r.stderr}`);
    const out: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return out;
  }

  /** Polls `show` until `accept` returns something; on timeout says what was last seen. */
  async waitForUnit<T>(unit: string, props: string[], what: string, accept: (p: Record<string, string>) => T | null | undefined | false, timeoutMs = 60_000): Promise<T> {
    let last: Record<string, string> = {};
    return waitFor(() => `${unit}: ${what}; last seen ${JSON.stringify(last)}`, async () => {
      last = await this.show(unit, props);
      return accept(last);
    }, timeoutMs, 50);
  }

  /** Writes `<unitDir>/<unit>.d/<name>.conf`; the caller runs daemon-reload. */
  dropIn(unitFile: string, name: string, text: string): void {
    const dir = join(this.unitDir, `${unitFile}.d`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.conf`), text);
  }

  /** Writes a file under the manager's HOME (parents made 0700, as the daemon wants them). */
  writeHome(relativePath: string, text: string): string {
    const file = join(this.home, relativePath);
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(file, text);
    return file;
  }

  /** Live processes carrying this manager's tag: its services, their workers, escapees. */
  taggedPids(): number[] {
    return livePidsWithEnv(`${SYSTEMD_TEST_ENV}=${this.id}`);
  }

  /**
   * Ends the manager by PID (SIGTERM: it stops its units, so the daemons stop their trees), then
   * SIGKILL of its process group and of any tagged process left; removes the temp dir.
   */
  async stop(): Promise<void> {
    const manager = this.manager;
    try {
      if (manager?.pid !== undefined && manager.exitCode === null && manager.signalCode === null) {
        const gone = new Promise<void>((resolve) => manager.once('exit', () => resolve()));
        manager.kill('SIGTERM');
        const timedOut = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 30_000).unref())]);
        if (timedOut) {
          try {
            process.kill(-manager.pid, 'SIGKILL');
          } catch {
            // the group is gone already
          }
          await gone;
        }
      }
      await waitFor(() => `processes of user manager ${this.id} to be gone: ${this.taggedPids().join(' ')}`, () => {
        const left = this.taggedPids();
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        return left.length === 0;
      }, 15_000, 50);
    } finally {
      this.lock?.stdin?.end();
      rmSync(this.root, { recursive: true, force: true });
    }
  }

  private async takeLock(): Promise<string | null> {
    const lock = spawn('flock', [LOCK_FILE, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.lock = lock;
    let said = '';
    lock.stdout!.on('data', (c: Buffer) => (said += c));
    lock.stderr!.on('data', (c: Buffer) => (said += c));
    const ended = new Promise<string>((resolve) => {
      lock.once('error', (err) => resolve(`flock(1) cannot run: ${err.message}`));
      lock.once('exit', () => resolve(`flock(1) exited: ${said}`));
    });
    const got = await Promise.race([waitFor('the user-manager lock', () => said.includes('locked'), 10 * 60_000, 50).then(() => null), ended]);
    lock.unref();
    (lock.stdout as unknown as { unref?: () => void }).unref?.();
    (lock.stderr as unknown as { unref?: () => void }).unref?.();
    (lock.stdin as unknown as { unref?: () => void }).unref?.();
    return got;
  }
}

/**
 * A started private user manager, stopped after the test file; null (after a loud skip message)
 * where systemd cannot run here.
 */
export async function startUserManager(): Promise<{ manager: UserManager } | { skip: string }> {
  const manager = new UserManager();
  const why = await manager.start();
  if (why === null) return { manager };
  await manager.stop();
  const message = `SKIPPING the systemd user manager tests: ${why}`;
  process.stderr.write(`\n${'!'.repeat(78)}\n${message}\n${'!'.repeat(78)}\n\n`);
  return { skip: message };
}

/** Live (non-zombie) pids whose environment holds the entry `entry` ("NAME=value"). */
export function livePidsWithEnv(entry: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours
    }
    if (environ.split('\0').includes(entry) && isAlive(pid)) pids.push(pid);
  }
  return pids.sort((a, b) => a - b);
}

/** The value of `name` in pid's environment, or null. */
export function envOf(pid: number, name: string): string | null {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').find((e) => e.startsWith(`${name}=`));
    return entry === undefined ? null : entry.slice(name.length + 1);
  } catch {
    return null;
  }
}

function userName(): string {
  return userInfo().username;
}
