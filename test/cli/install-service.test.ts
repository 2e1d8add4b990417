// install-service --print and the command line of install-service / uninstall-service (#16),
// without a user manager: what --print writes, that it touches nothing, and the usage errors.
// Writing, daemon-reload and running the unit: test/cli/systemd-service.test.ts.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadNative } from '../../src/os/native.js';
import { CLI, makeTempDir, runCli } from '../helpers/daemon.js';

/** NotifyAccess=main needs the native helper, which `npm install` builds where it can. */
const NOTIFY_ACCESS = loadNative().loaded ? 'main' : 'all';

function tempHome(t: { after(fn: () => void): void }): { home: string; xdg: string; env: Record<string, string> } {
  const dir = makeTempDir('apd-svc-');
  t.after(() => dir.cleanup());
  const home = join(dir.path, 'home');
  mkdirSync(join(home, '.autopilot'), { recursive: true, mode: 0o700 });
  const xdg = join(dir.path, 'xdg');
  return { home, xdg, env: { HOME: home, XDG_CONFIG_HOME: xdg } };
}

test('install-service --print writes the unit of this installation to stdout and touches nothing', async (t) => {
  const { home, xdg, env } = tempHome(t);
  writeFileSync(join(home, '.autopilot/daemon.toml'), '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 30000\n');
  const r = await runCli(['install-service', '--print'], { env });
  assert.equal(r.code, 0, r.stderr);
  if (NOTIFY_ACCESS === 'main') assert.equal(r.stderr, '');
  const lines = r.stdout.split('\n');
  assert.ok(lines.includes(`ExecStart=${process.execPath} --lite-mode --no-expose-wasm --max-semi-space-size=1 --gc-memory-reducer-start-delay-ms=200 ${realpathSync(CLI)} start --foreground`), r.stdout);
  for (const line of ['Type=notify', `NotifyAccess=${NOTIFY_ACCESS}`, 'WatchdogSec=30', 'KillMode=mixed', 'TimeoutStopSec=45', 'WantedBy=default.target']) {
    assert.ok(lines.includes(line), `${line} in\n${r.stdout}`);
  }
  assert.ok(!existsSync(xdg), '--print creates no directory');
});

test('without the native helper, install-service writes NotifyAccess=all and says why in one line', async (t) => {
  const { env } = tempHome(t);
  const r = await runCli(['install-service', '--print'], { env: { ...env, _AUTOPILOTD_NO_NATIVE: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.split('\n').includes('NotifyAccess=all'), r.stdout);
  assert.match(r.stderr, /^autopilotd: the native helper is not available \(disabled by _AUTOPILOTD_NO_NATIVE=1\): the unit says NotifyAccess=all for the systemd-notify fallback; [^\n]*\n$/);
});

test('install-service --instance --print writes the template; the instance file must exist', async (t) => {
  const { home, xdg, env } = tempHome(t);
  const missing = await runCli(['install-service', '--instance', 'web', '--print'], { env });
  assert.equal(missing.code, 78);
  assert.match(missing.stderr, /flag --instance: cannot read config file: ENOENT/);
  assert.ok(missing.stderr.includes(join(home, '.autopilot/web.toml')));
  writeFileSync(join(home, '.autopilot/web.toml'), '');
  const r = await runCli(['install-service', '--instance', 'web', '--print'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ExecStart=\S+ --lite-mode --no-expose-wasm --max-semi-space-size=1 --gc-memory-reducer-start-delay-ms=200 \S+ start --foreground --instance %i$/m);
  assert.ok(!existsSync(xdg));
});

test('install-service and uninstall-service refuse a bad instance name (64), and --config with --instance', async (t) => {
  const { env } = tempHome(t);
  for (const command of ['install-service', 'uninstall-service', 'status', 'logs']) {
    const r = await runCli([command, '--instance', '../x'], { env });
    assert.equal(r.code, 64, `${command}: ${r.stderr}`);
    assert.match(r.stderr, /--instance: instance name "\.\.\/x" is not valid/);
  }
  const both = await runCli(['install-service', '--instance', 'web', '--config', '/x.toml', '--print'], { env });
  assert.equal(both.code, 64);
  assert.match(both.stderr, /--config and --instance do not go together/);
  const unknown = await runCli(['uninstall-service', '--now'], { env });
  assert.equal(unknown.code, 64);
});

test('uninstall-service with no unit file says so and changes nothing', async (t) => {
  const { xdg, env } = tempHome(t);
  const r = await runCli(['uninstall-service'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `no unit file at ${join(xdg, 'systemd/user/autopilotd.service')}: nothing to uninstall\n`);
  assert.ok(!existsSync(xdg));
});

test('help lists install-service, uninstall-service and --instance', async () => {
  const r = await runCli(['--help']);
  assert.match(r.stdout, /install-service \[--instance NAME\] \[--enable\] \[--now\] \[--print\]/);
  assert.match(r.stdout, /uninstall-service \[--instance NAME\]/);
  assert.match(r.stdout, /--instance NAME/);
  const one = await runCli(['install-service', '--help']);
  assert.match(one.stdout, /^Usage: autopilotd install-service/);
});
