// The CLI as a user meets it: usage errors exit 64, bad configuration exits 78 before anything
// starts, config check/show, help and version.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { daemonInTempDir, makeTempDir, runCli, writeConfig } from '../helpers/daemon.js';
import { sandbox } from '../helpers/sandbox.js';
import { VERSION } from '../../src/version.js';

test('--version prints the version', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `autopilotd ${VERSION}\n`);
});

test('--help lists every command, and each command has its own help', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  for (const cmd of ['start', 'stop', 'status', 'restart-worker', 'stop-worker', 'start-worker', 'reload', 'logs', 'events', 'metrics', 'config']) {
    assert.match(r.stdout, new RegExp(`\\n  ${cmd}`), `main help mentions ${cmd}`);
    const own = await runCli([cmd, '--help']);
    assert.equal(own.code, 0);
    assert.match(own.stdout, new RegExp(`^Usage: autopilotd ${cmd}`));
  }
});

const usageCases: [string, string[], RegExp][] = [
  ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
  ['an unknown global flag', ['--frob'], /unknown option '--frob'/],
  ['an unknown flag of start', ['start', '--foregrund'], /start: unknown option '--foregrund'; did you mean '--foreground'\?/],
  ['a flag missing its value', ['start', '--config'], /start: --config needs a value \(--config PATH\)/],
  ['a stray positional argument', ['status', 'now'], /status: unexpected argument 'now'/],
  ['an empty worker argv after --', ['start', '--foreground', '--'], /nothing after --/],
  ['a bad -n for logs', ['logs', '-n', 'many'], /-n expects a whole number/],
  ['a bad --timeout for stop', ['stop', '--timeout', 'soon'], /stop: --timeout: expected a DURATION/],
  ['config without an action', ['config'], /config: say check or show/],
  ['config with an unknown action', ['config', 'lint'], /unknown action 'lint'/],
];

for (const [what, args, message] of usageCases) {
  test(`${what} is a usage error: exit 64 and a pointer to --help`, async () => {
    const dir = makeTempDir();
    try {
      // A valid config of its own, so a usage error cannot be confused with a config error.
      const config = writeConfig(dir.path, '');
      const r = await runCli(args, { env: { AUTOPILOTD_CONFIG: config } });
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Try 'autopilotd (--help|help [a-z-]+)'/);
    } finally {
      dir.cleanup();
    }
  });
}

test('a bad config file: exit 78 naming file, key and line, and nothing is started', async () => {
  const dir = makeTempDir();
  try {
    const config = writeConfig(dir.path, '[memory]\npoll_interval_ms = -5\n[restart]\nbackof_multiplier = 2.0\n');
    const r = await runCli(['start', '--foreground', '--config', config]);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, new RegExp(`${config.replace(/[.]/g, '\\.')}:6:\\d+: memory\\.poll_interval_ms: expected .*got -5`));
    assert.match(r.stderr, /:8:\d+: restart\.backof_multiplier: unknown key; did you mean "backoff_multiplier"\?/);
    assert.deepEqual(readdirSync(dir.path), ['daemon.toml'], 'no pid file, socket or log was created');
  } finally {
    dir.cleanup();
  }
});

test('a config file that is not UTF-8: exit 78 naming the line, and nothing is started (#14)', async (t) => {
  // A sandbox, so that code which did start a daemon here is cleaned up by PID, not left running.
  const box = sandbox(t);
  // A Latin-1 "ü" (0xfc) in a comment: even where it would change nothing, the file is not TOML.
  writeFileSync(box.configPath, Buffer.concat([readFileSync(box.configPath), Buffer.from('# f'), Buffer.from([0xfc]), Buffer.from('r den Worker\n')]));
  const line = readFileSync(box.configPath, 'latin1').split('\n').length - 1;
  const r = await box.cli(['start']);
  assert.equal(r.code, 78, r.stderr);
  assert.equal(r.stderr, `autopilotd: invalid configuration:\n${box.configPath}:${line}:4: expected UTF-8 text, got byte 0xfc; save the file as UTF-8\n`);
  assert.deepEqual(readdirSync(box.dir), ['daemon.toml'], 'no pid file, socket or log was created');
});

test('a bad environment override: exit 78 naming the variable', async () => {
  const dir = makeTempDir();
  try {
    const config = writeConfig(dir.path, '');
    const r = await runCli(['start', '--foreground', '--config', config], { env: { AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: 'fast' } });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /AUTOPILOTD_MEMORY_POLL_INTERVAL_MS.*memory\.poll_interval_ms.*"fast"/);
    assert.equal(existsSync(join(dir.path, 'd.pid')), false);
  } finally {
    dir.cleanup();
  }
});

test('a TOML syntax error: exit 78 with line and column', async () => {
  const dir = makeTempDir();
  try {
    const config = join(dir.path, 'bad.toml');
    writeFileSync(config, 'project = "x"\n[worker\ncommand = ["a"]\n');
    const r = await runCli(['config', 'check', '--config', config]);
    assert.equal(r.code, 78);
    assert.match(r.stderr, new RegExp(`${config.replace(/[.]/g, '\\.')}:2:\\d+`));
  } finally {
    dir.cleanup();
  }
});

test('an explicitly named config file that does not exist is an error; the default one may be missing', async () => {
  const dir = makeTempDir();
  try {
    const missing = await runCli(['config', 'check', '--config', join(dir.path, 'nope.toml')]);
    assert.equal(missing.code, 78);
    assert.match(missing.stderr, /nope\.toml/);
    const defaults = await runCli(['config', 'check'], { env: { HOME: dir.path } });
    assert.equal(defaults.code, 0, defaults.stderr);
    assert.match(defaults.stdout, /built-in defaults/);
  } finally {
    dir.cleanup();
  }
});

test('config show prints valid TOML with where each value came from, flags over env over file', async () => {
  const dir = makeTempDir();
  try {
    const config = writeConfig(dir.path, '[memory]\npoll_interval_ms = 2000\n', 'project = "from-file"');
    const r = await runCli(['config', 'show', '--config', config], {
      env: { AUTOPILOTD_PROJECT: 'from-env', AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: '3000' },
    });
    assert.equal(r.code, 0, r.stderr);
    const shown = parse(r.stdout) as { project: string; memory: { poll_interval_ms: number; cooldown_ms: number } };
    assert.equal(shown.project, 'from-env');
    assert.equal(shown.memory.poll_interval_ms, 3000);
    assert.equal(shown.memory.cooldown_ms, 15000);
    assert.match(r.stdout, /poll_interval_ms = 3000 +# env AUTOPILOTD_MEMORY_POLL_INTERVAL_MS/);
    assert.match(r.stdout, /cooldown_ms = 15000 +# default/);
    assert.match(r.stdout, /socket_path = .* +# file:\d+/);
  } finally {
    dir.cleanup();
  }
});

test('a config file broken while the daemon runs does not lock the user out: status and stop still reach it', async (t) => {
  const { daemon, configPath: config } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "1000"]\n');
  writeFileSync(config, `bogus_key = 1\n${readFileSync(config, 'utf8')}`);

  const status = await runCli(['status', '--config', config]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stderr, /warning: the configuration has problems/);
  assert.match(status.stderr, /:1:1: bogus_key: unknown key/);
  assert.match(status.stdout, /worker: +running/);

  const reload = await runCli(['reload', '--config', config]);
  assert.equal(reload.code, 78, 'reload would hand the daemon the broken file: refused here');

  const stop = await runCli(['stop', '--config', config]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
});

test('output into a pipe whose reader is gone (`status | true`) ends quietly: exit as usual, nothing on stderr', async (t) => {
  const box = sandbox(t);
  await box.start();
  for (const args of [['status'], ['status', '--json'], ['metrics'], ['--help'], ['config', 'show']]) {
    const child = box.spawnCli(args);
    // Closed before the CLI has even started Node: every write it makes meets EPIPE.
    child.child.stdout!.destroy();
    const exited = await child.exited;
    assert.deepEqual(exited, { code: 0, signal: null }, `${args.join(' ')}: ${child.stderr}`);
    assert.equal(child.stderr, '', args.join(' '));
  }
});
