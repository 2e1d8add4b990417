// The unit install-service writes, run by a real private systemd user manager (#16): daemon-reload
// of the installed file, activating -> active only at READY, StatusText, reload, stop with escapees,
// restart without two workers, the watchdog, two template instances, uninstall. One manager for
// the whole file (test/helpers/systemd-user.ts); the tests run in order and each leaves its unit
// stopped. The only drop-in on top of the installed unit sends the daemon's output to a file
// (these machines have no journald) and shortens RestartSec; the watchdog test shortens WatchdogSec.

import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, isAlive } from '../helpers/daemon.js';
import { envOf, livePidsWithEnv, startUserManager, type UserManager } from '../helpers/systemd-user.js';
import { waitFor } from '../helpers/wait.js';
import type { StatusData } from '../../src/control/protocol.js';
import { loadNative } from '../../src/os/native.js';

let um: UserManager | null = null;
let skip: string | null = null;

before(async () => {
  const started = await startUserManager();
  if ('skip' in started) skip = started.skip;
  else um = started.manager;
});

after(async () => {
  await um?.stop();
});

/** The manager, or a skip when systemd cannot run here (said loudly by startUserManager). */
function manager(t: TestContext): UserManager | null {
  if (um === null) {
    t.skip(skip ?? 'no user manager');
    return null;
  }
  const m = um;
  // Whatever a test leaves running (a failed assertion) is stopped before the next one.
  t.after(async () => {
    await m.systemctl(['stop', 'autopilotd', 'autopilotd@*']);
    await m.systemctl(['reset-failed']);
  });
  return m;
}

const SLEEP_WORKER = '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 3000\n';

function logPathOf(m: UserManager, unit: string): string {
  return join(m.root, `${unit}.log`);
}

/** The daemon's output to a file (no journald here) and a quick restart; applied by the next daemon-reload. */
function outputDropIn(m: UserManager, unitFile: string, unit: string): void {
  const log = logPathOf(m, unit);
  m.dropIn(unitFile, 'test', `[Service]\nStandardOutput=append:${log}\nStandardError=inherit\nRestartSec=1\n`);
}

function daemonLog(m: UserManager, unit: string): string {
  const path = logPathOf(m, unit);
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

async function cli(m: UserManager, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return m.cli(CLI, args);
}

async function statusOf(m: UserManager, instance: string | null = null): Promise<StatusData> {
  const r = await cli(m, ['status', '--json', ...(instance === null ? [] : ['--instance', instance])]);
  assert.equal(r.code, 0, `status: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusData;
}

/** Workers (and their descendants, escapees included) by the instance id the daemon marked them with. */
function markedBy(m: UserManager): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const pid of m.taggedPids()) {
    const id = envOf(pid, 'AUTOPILOTD_INSTANCE');
    if (id === null) continue;
    groups.set(id, [...(groups.get(id) ?? []), pid]);
  }
  return groups;
}

async function mustSucceed(r: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string): Promise<string> {
  const done = await r;
  assert.equal(done.code, 0, `${what} exited ${done.code}\nstdout: ${done.stdout}\nstderr: ${done.stderr}`);
  return done.stdout;
}

function lastIndexWith(lines: string[], text: string): number {
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.includes(text)) return i;
  return -1;
}

async function stopUnit(m: UserManager, unit: string): Promise<void> {
  await mustSucceed(m.systemctl(['stop', unit]), `systemctl --user stop ${unit}`);
  await m.systemctl(['reset-failed', unit]);
}

test('install-service writes the unit into XDG_CONFIG_HOME and the user manager loads it', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  const out = await mustSucceed(cli(m, ['install-service']), 'install-service');
  const file = join(m.unitDir, 'autopilotd.service');
  assert.match(out, new RegExp(`^wrote ${file.replace(/[.]/g, '\\.')}$`, 'm'));
  assert.match(out, /^next:\n {2}systemctl --user enable --now autopilotd /m);
  // No logind on these machines: lingering is unknown, and said so without a false "off".
  assert.match(out, /^(cannot tell whether lingering is on|lingering is off) for \S+ .*loginctl enable-linger /m);
  const text = readFileSync(file, 'utf8');
  assert.equal(text, (await cli(m, ['install-service', '--print'])).stdout, 'the file is what --print shows');
  assert.ok(text.includes(`${realpathSync(CLI)} start --foreground`), text);

  const shown = await m.show('autopilotd', ['LoadState', 'FragmentPath', 'Type', 'NotifyAccess', 'KillMode', 'Delegate', 'OOMPolicy', 'Restart', 'RestartUSec', 'NoNewPrivileges', 'UnitFileState']);
  assert.deepEqual(shown, {
    LoadState: 'loaded', FragmentPath: file, Type: 'notify', NotifyAccess: loadNative().loaded ? 'main' : 'all', KillMode: 'mixed', Delegate: 'yes',
    OOMPolicy: 'continue', Restart: 'always', RestartUSec: '10s', NoNewPrivileges: 'yes', UnitFileState: 'disabled',
  });
  const verify = await m.run('systemd-analyze', ['--user', 'verify', file]);
  assert.equal(verify.code, 0, `systemd-analyze verify: ${verify.stderr}`);

  const again = await mustSucceed(cli(m, ['install-service', '--enable']), 'install-service --enable');
  assert.match(again, /^unchanged /m);
  assert.match(again, /^enabled autopilotd: /m);
  assert.equal((await m.show('autopilotd', ['UnitFileState'])).UnitFileState, 'enabled');
  outputDropIn(m, 'autopilotd.service', 'autopilotd');
  await mustSucceed(m.systemctl(['daemon-reload']), 'daemon-reload');
});

test('the unit turns active only at READY: a first spawn delayed by an orphaned tree keeps it activating', async (t) => {
  const m = manager(t);
  if (m === null) return;
  // A worker that ignores SIGTERM, left behind by a daemon killed outside systemd: the unit's daemon
  // must stop it (SIGTERM, the 3 s grace, SIGKILL) before it spawns, and only then say READY.
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n[worker]\ncommand = ["sh", "-c", "trap '' TERM; exec sleep 1000"]\nstop_timeout_ms = 3000\n`);
  const started = await mustSucceed(cli(m, ['start']), 'autopilotd start');
  const [, daemonPid, orphanPid] = /pid (\d+), worker pid (\d+)/.exec(started)!.map(Number);
  process.kill(daemonPid!, 'SIGKILL');
  await waitFor('the killed daemon to be gone', () => !isAlive(daemonPid!));
  assert.ok(isAlive(orphanPid!), 'the orphaned worker runs on');

  await mustSucceed(m.systemctl(['start', '--no-block', 'autopilotd']), 'systemctl start --no-block');
  const activating = await m.waitForUnit('autopilotd', ['ActiveState', 'SubState', 'MainPID'], 'activating with a running daemon',
    (p) => (p.ActiveState === 'activating' && Number(p.MainPID) > 0 ? p : null));
  assert.ok(isAlive(orphanPid!), 'activating while the orphan is still being stopped');
  const active = await m.waitForUnit('autopilotd', ['ActiveState', 'SubState', 'MainPID'], 'active (running)', (p) => (p.ActiveState === 'active' ? p : null));
  assert.equal(active.SubState, 'running');
  assert.equal(active.MainPID, activating.MainPID, 'the same daemon, now ready');
  assert.ok(!isAlive(orphanPid!), 'the orphan was gone before READY');
  const status = await statusOf(m);
  assert.equal(status.daemon.pid, Number(active.MainPID));
  assert.notEqual(status.worker.pid, orphanPid);
  assert.equal(status.worker.state, 'running');
  await stopUnit(m, 'autopilotd');
});

test('StatusText follows the worker: running with its pid, stopped, running again', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  await mustSucceed(m.systemctl(['start', 'autopilotd']), 'systemctl start');
  const first = (await statusOf(m)).worker.pid!;
  await m.waitForUnit('autopilotd', ['StatusText'], `StatusText naming worker pid ${first}`, (p) => new RegExp(`^worker running, pid ${first}\\b`).test(p.StatusText ?? ''));
  await mustSucceed(cli(m, ['stop-worker']), 'stop-worker');
  await m.waitForUnit('autopilotd', ['StatusText'], 'StatusText saying the worker is stopped', (p) => /^worker stopped\b/.test(p.StatusText ?? ''));
  await mustSucceed(cli(m, ['start-worker']), 'start-worker');
  const second = (await statusOf(m)).worker.pid!;
  assert.notEqual(second, first);
  await m.waitForUnit('autopilotd', ['StatusText'], `StatusText naming worker pid ${second}`, (p) => new RegExp(`^worker running, pid ${second}\\b`).test(p.StatusText ?? ''));
  await stopUnit(m, 'autopilotd');
});

test('systemctl --user reload re-reads the configuration; daemon and worker stay', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  await mustSucceed(m.systemctl(['start', 'autopilotd']), 'systemctl start');
  const before = await statusOf(m);
  const reloadsBefore = daemonLog(m, 'autopilotd').split('configuration reloaded').length;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\nlog_level = "debug"\n${SLEEP_WORKER}`);
  await mustSucceed(m.systemctl(['reload', 'autopilotd']), 'systemctl reload');
  await waitFor(() => `a "configuration reloaded" line; log:\n${daemonLog(m, 'autopilotd')}`, () => daemonLog(m, 'autopilotd').split('configuration reloaded').length > reloadsBefore);
  // log_level debug now applies: the memory guard's samples appear.
  await waitFor(() => `a debug line after the reload; log:\n${daemonLog(m, 'autopilotd')}`, () => / DEBUG memory /.test(daemonLog(m, 'autopilotd')), 30_000);
  await m.waitForUnit('autopilotd', ['ActiveState'], 'active after the reload', (p) => p.ActiveState === 'active');
  const after = await statusOf(m);
  assert.equal(after.daemon.pid, before.daemon.pid);
  assert.equal(after.worker.pid, before.worker.pid);
  await stopUnit(m, 'autopilotd');
});

test('systemctl --user stop leaves no process of the tree, escapees included, and the daemon exits 0', async (t) => {
  const m = manager(t);
  if (m === null) return;
  const worker = '( setsid sleep 1000 & ); ( sleep 1001 & ); exec sleep 1002';
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n[worker]\ncommand = ["sh", "-c", ${JSON.stringify(worker)}]\nstop_timeout_ms = 3000\n`);
  await mustSucceed(m.systemctl(['start', 'autopilotd']), 'systemctl start');
  const status = await statusOf(m);
  const tree = await waitFor(() => `three marked processes; seen ${JSON.stringify([...markedBy(m)])}`, () => {
    const groups = [...markedBy(m).values()];
    return groups.length === 1 && groups[0]!.length === 3 ? groups[0]! : null;
  });
  assert.ok(tree.includes(status.worker.pid!));
  await stopUnit(m, 'autopilotd');
  assert.deepEqual(tree.filter(isAlive), [], 'every process of the tree is gone once stop returns');
  assert.deepEqual([...markedBy(m)], []);
  const shown = await m.show('autopilotd', ['ActiveState', 'Result', 'ExecMainStatus']);
  assert.deepEqual(shown, { ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });
  assert.match(daemonLog(m, 'autopilotd'), /worker tree gone/);
});

test('systemctl --user restart never leaves two workers at once', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  await mustSucceed(m.systemctl(['start', 'autopilotd']), 'systemctl start');
  const before = await statusOf(m);
  const seen = new Set<string>();
  let overlap: string | null = null;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const groups = markedBy(m);
      for (const id of groups.keys()) seen.add(id);
      if (groups.size > 1 && overlap === null) overlap = JSON.stringify([...groups]);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  let after: StatusData;
  try {
    await mustSucceed(m.systemctl(['restart', 'autopilotd']), 'systemctl restart');
    after = await statusOf(m);
  } finally {
    sampling = false;
    await sampler;
  }
  assert.equal(overlap, null, `two workers at once: ${overlap}`);
  assert.notEqual(after.daemon.pid, before.daemon.pid);
  assert.ok(!isAlive(before.worker.pid!), 'the old worker is gone');
  assert.ok(seen.size >= 1);
  // The log orders it too: the old tree is gone before the new daemon spawns.
  const log = daemonLog(m, 'autopilotd').split('\n');
  const gone = lastIndexWith(log, 'worker tree gone');
  const spawned = lastIndexWith(log, `worker spawned generation=1 pid=${after.worker.pid} `);
  assert.ok(gone >= 0 && spawned > gone, `old tree gone (line ${gone}) before the new spawn (line ${spawned})`);
  await stopUnit(m, 'autopilotd');
});

test('the watchdog: a daemon frozen with SIGSTOP is killed and restarted within WatchdogSec plus a margin', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  m.dropIn('autopilotd.service', 'watchdog', '[Service]\nWatchdogSec=2\nTimeoutAbortSec=2\n');
  t.after(async () => {
    const { rmSync } = await import('node:fs');
    rmSync(join(m.unitDir, 'autopilotd.service.d', 'watchdog.conf'), { force: true });
    await m.systemctl(['daemon-reload']);
  });
  await mustSucceed(m.systemctl(['daemon-reload']), 'daemon-reload');
  await mustSucceed(m.systemctl(['start', 'autopilotd']), 'systemctl start');
  const first = await m.show('autopilotd', ['MainPID', 'NRestarts', 'WatchdogTimestampMonotonic']);
  // A daemon that pings is left alone: the watchdog timestamp moves on, twice, with the same pid.
  let pings = 0;
  let lastPing = first.WatchdogTimestampMonotonic;
  await m.waitForUnit('autopilotd', ['MainPID', 'WatchdogTimestampMonotonic'], 'two watchdog pings', (p) => {
    assert.equal(p.MainPID, first.MainPID, 'killed while it was pinging');
    if (p.WatchdogTimestampMonotonic !== lastPing) {
      pings += 1;
      lastPing = p.WatchdogTimestampMonotonic;
    }
    return pings >= 2;
  }, 20_000);
  const oldWorker = (await statusOf(m)).worker.pid!;
  const frozenAt = Date.now();
  process.kill(Number(first.MainPID), 'SIGSTOP');
  const restarted = await m.waitForUnit('autopilotd', ['MainPID', 'NRestarts', 'ActiveState'], 'a new daemon, active',
    (p) => (p.ActiveState === 'active' && p.MainPID !== first.MainPID && Number(p.MainPID) > 0 ? p : null), 60_000);
  const tookMs = Date.now() - frozenAt;
  assert.equal(Number(restarted.NRestarts), Number(first.NRestarts) + 1);
  assert.ok(!isAlive(Number(first.MainPID)), 'the frozen daemon was killed');
  assert.ok(!isAlive(oldWorker), 'and its worker with it');
  t.diagnostic(`frozen daemon replaced after ${tookMs} ms (WatchdogSec=2, TimeoutAbortSec=2, RestartSec=1)`);
  assert.equal([...markedBy(m)].length, 1, 'one worker tree');
  await stopUnit(m, 'autopilotd');
});

test('two template instances run side by side, each with its own socket, PID file and worker; uninstall keeps the template while one is left', async (t) => {
  const m = manager(t);
  if (m === null) return;
  for (const name of ['alpha', 'beta']) {
    // `project` reaches the worker as --project NAME, which sh takes as $1 and ignores.
    m.writeHome(`.autopilot/${name}.toml`, `working_dir = ${JSON.stringify(m.home)}\nproject = "${name}"\n[worker]\ncommand = ["sh", "-c", "exec sleep 1000", "sh"]\nstop_timeout_ms = 3000\n`);
  }
  await mustSucceed(cli(m, ['install-service', '--instance', 'alpha']), 'install-service --instance alpha');
  const out = await mustSucceed(cli(m, ['install-service', '--instance', 'beta']), 'install-service --instance beta');
  assert.match(out, /^unchanged .*autopilotd@\.service$/m, 'one template for both');
  assert.match(out, /journalctl --user -u autopilotd@beta -f/);
  for (const name of ['alpha', 'beta']) outputDropIn(m, `autopilotd@${name}.service`, `autopilotd@${name}`);
  await mustSucceed(m.systemctl(['daemon-reload']), 'daemon-reload');
  await mustSucceed(m.systemctl(['start', 'autopilotd@alpha', 'autopilotd@beta']), 'systemctl start both');

  const alpha = await statusOf(m, 'alpha');
  const beta = await statusOf(m, 'beta');
  assert.equal(String(alpha.daemon.pid), (await m.show('autopilotd@alpha', ['MainPID'])).MainPID);
  assert.equal(String(beta.daemon.pid), (await m.show('autopilotd@beta', ['MainPID'])).MainPID);
  assert.notEqual(alpha.worker.pid, beta.worker.pid);
  assert.equal(alpha.daemon.config_path, join(m.home, '.autopilot/alpha.toml'));
  assert.equal(beta.daemon.config_path, join(m.home, '.autopilot/beta.toml'));
  assert.deepEqual(alpha.worker.command.slice(-2), ['--project', 'alpha']);
  assert.deepEqual(beta.worker.command.slice(-2), ['--project', 'beta']);
  for (const name of ['alpha', 'beta']) {
    assert.ok(existsSync(join(m.home, `.autopilot/autopilotd@${name}.sock`)), `${name}'s socket`);
    assert.ok(existsSync(join(m.home, `.autopilot/autopilotd@${name}.pid`)), `${name}'s pid file`);
  }
  assert.equal(markedBy(m).size, 2, 'two worker trees');

  const gone = await mustSucceed(cli(m, ['uninstall-service', '--instance', 'alpha']), 'uninstall-service --instance alpha');
  assert.match(gone, /^stopped and disabled autopilotd@alpha$/m);
  assert.match(gone, /^kept .*autopilotd@\.service: autopilotd@beta still uses it$/m);
  assert.equal((await m.show('autopilotd@alpha', ['ActiveState'])).ActiveState, 'inactive');
  assert.equal((await statusOf(m, 'beta')).daemon.pid, beta.daemon.pid, 'beta untouched');
  assert.ok(!isAlive(alpha.worker.pid!));

  const last = await mustSucceed(cli(m, ['uninstall-service', '--instance', 'beta']), 'uninstall-service --instance beta');
  assert.match(last, /^removed .*autopilotd@\.service$/m);
  assert.ok(!existsSync(join(m.unitDir, 'autopilotd@.service')));
  assert.ok(!isAlive(beta.worker.pid!));
  assert.deepEqual([...markedBy(m)], []);
});

test('without the native helper: NotifyAccess=all, and the daemon reaches active through systemd-notify and says what is missing', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  // install-service where the helper is not loadable, and a daemon that cannot load it either.
  const installed = await m.run('env', ['_AUTOPILOTD_NO_NATIVE=1', process.execPath, CLI, 'install-service']);
  assert.equal(installed.code, 0, `install-service: ${installed.stderr}`);
  assert.equal(installed.stderr.split('\n').filter((l) => /native helper/.test(l)).length, 1, `said once: ${installed.stderr}`);
  m.dropIn('autopilotd.service', 'no-native', '[Service]\nEnvironment=_AUTOPILOTD_NO_NATIVE=1\n');
  t.after(async () => {
    rmSync(join(m.unitDir, 'autopilotd.service.d', 'no-native.conf'), { force: true });
    await mustSucceed(cli(m, ['install-service']), 'install-service with the helper again');
  });
  await mustSucceed(m.systemctl(['daemon-reload']), 'daemon-reload');
  assert.equal((await m.show('autopilotd', ['NotifyAccess'])).NotifyAccess, 'all');
  const logFrom = daemonLog(m, 'autopilotd').length;

  await mustSucceed(m.systemctl(['start', 'autopilotd']), 'systemctl start');
  const active = await m.waitForUnit('autopilotd', ['ActiveState', 'SubState', 'MainPID'], 'active (running)', (p) => (p.ActiveState === 'active' ? p : null));
  assert.equal(active.SubState, 'running');
  const status = await statusOf(m);
  assert.equal(status.daemon.pid, Number(active.MainPID));
  assert.equal(status.daemon.native.loaded, false);
  await m.waitForUnit('autopilotd', ['StatusText'], 'StatusText through systemd-notify', (p) => /^worker running, pid \d+/.test(p.StatusText ?? ''));
  const said = daemonLog(m, 'autopilotd').slice(logFrom).split('\n').filter((l) => /native helper not loaded/.test(l));
  assert.equal(said.length, 1, daemonLog(m, 'autopilotd').slice(logFrom));
  await stopUnit(m, 'autopilotd');
});

test('uninstall-service stops, disables and removes the plain unit', async (t) => {
  const m = manager(t);
  if (m === null) return;
  m.writeHome('.autopilot/daemon.toml', `working_dir = ${JSON.stringify(m.home)}\n${SLEEP_WORKER}`);
  const out = await mustSucceed(cli(m, ['install-service', '--now']), 'install-service --now');
  assert.match(out, /^started autopilotd$/m);
  const { worker } = await statusOf(m);
  const gone = await mustSucceed(cli(m, ['uninstall-service']), 'uninstall-service');
  assert.match(gone, /^stopped and disabled autopilotd\nremoved /m);
  assert.ok(!existsSync(join(m.unitDir, 'autopilotd.service')));
  assert.ok(!isAlive(worker.pid!));
  assert.equal((await m.show('autopilotd', ['LoadState'])).LoadState, 'not-found');
  assert.deepEqual(livePidsWithEnv('AUTOPILOTD_GENERATION=1').filter((pid) => m.taggedPids().includes(pid)), []);
});
