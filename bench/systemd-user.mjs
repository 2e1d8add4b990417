// A private systemd user manager beside autopilotd in the benchmarks, started as
// test/helpers/systemd-user.ts starts one: /run/systemd/system present (what tells systemd's tools
// it is booted), a private XDG_RUNTIME_DIR (0700) and XDG homes in a temp dir, `systemd --user` as
// our child. It takes the tests' lock first: two managers on the machine would both take the same
// cgroup tree and kill each other's services. Stopped by its PID.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { alive, signal, stopByPid, waitFor } from './processes.mjs';

export const SYSTEMD = '/lib/systemd/systemd';
const LOCK_FILE = join(tmpdir(), 'autopilotd-test-user-manager.lock');

/** Held by a flock(1) child until our pipe to it closes, even if this process is SIGKILLed. */
async function takeLock() {
  const lock = spawn('flock', [LOCK_FILE, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let said = '';
  lock.stdout.on('data', (c) => (said += c));
  let exited = false;
  const gone = new Promise((resolve) => lock.once('exit', () => resolve((exited = true))));
  await waitFor('the user-manager lock (a test run may hold it)', () => {
    if (exited) throw new Error(`flock(1) exited: ${said}`);
    return said.includes('locked');
  }, 10 * 60_000);
  lock.unref();
  lock.stdout.unref?.();
  // Releasing: cat sees EOF and exits, flock with it. Referenced again meanwhile, or the wait for
  // its exit would not keep Node running (exit 13, the rest of the cleanup never run).
  return async () => {
    lock.ref();
    lock.stdin.end();
    await gone;
  };
}

/**
 * Starts a user manager in `dir` with `units` ({ name: text }) in its unit directory, then
 * `systemctl --user start` of each. Returns its pid, a systemctl runner and stop().
 */
export async function startUserManager(dir, units, extraEnv) {
  if (!existsSync(SYSTEMD)) throw new Error(`${SYSTEMD} is not installed`);
  mkdirSync('/run/systemd/system', { recursive: true });
  const runtime = join(dir, 'run');
  mkdirSync(runtime, { mode: 0o700 });
  for (const sub of ['home', 'config/systemd/user', 'data', 'state']) mkdirSync(join(dir, sub), { recursive: true });
  for (const [name, text] of Object.entries(units)) writeFileSync(join(dir, 'config/systemd/user', name), text);
  const user = userInfo().username;
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: join(dir, 'home'),
    USER: user,
    LOGNAME: user,
    LANG: 'C.UTF-8',
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_STATE_HOME: join(dir, 'state'),
    ...extraEnv,
  };
  const release = await takeLock();
  const log = openSync(join(dir, 'manager.log'), 'a');
  const manager = spawn(SYSTEMD, ['--user'], { env, cwd: env.HOME, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  manager.unref();
  const pid = manager.pid;
  const systemctl = (args) => spawnSync('systemctl', ['--user', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  const stop = async () => {
    try {
      // SIGTERM: the manager stops its units, then exits.
      await stopByPid(pid, 'systemd --user', 30_000);
      signal(-pid, 'SIGKILL');
    } finally {
      await release();
    }
  };
  try {
    await waitFor('systemd --user to come up', () => {
      if (!alive(pid)) throw new Error(`systemd --user exited; its log:\n${readFileSync(join(dir, 'manager.log'), 'utf8')}`);
      return /^(running|degraded)$/m.test(systemctl(['is-system-running']).stdout);
    }, 60_000, 100);
    for (const name of Object.keys(units)) {
      const r = systemctl(['start', name]);
      if (r.status !== 0) throw new Error(`systemctl --user start ${name} exited ${r.status}: ${r.stderr}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid, systemctl, stop };
}
