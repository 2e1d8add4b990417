// formatConfigShow: valid TOML that loads back to the same configuration, with a source per value.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'smol-toml';
import { loadConfig } from '../../src/config/load.js';
import { formatConfigShow } from '../../src/config/show.js';
import { makeTempHome } from './temp-home.js';

test('config show parses back with smol-toml and loads back to the same configuration', (t) => {
  const home = makeTempHome(t);
  const file = home.write(
    '.autopilot/daemon.toml',
    [
      'working_dir = "work"',
      '[worker]',
      'command = ["node", "worker.js", "--name=\\"quoted\\"", "tab\\there"]',
      'env = { RUST_LOG = "info", "ODD NAME" = "line1\\nline2 \\u00e9 \\u007f" }',
      '[memory]',
      'min_available_bytes = "1.5GiB"',
      'psi_some_avg10 = 10',
      'hog_scope = "user"',
      '[restart]',
      'hold_exit_codes = [75, 76]',
      '[notify]',
      'command = ["sh", "-c", "cat >> ~/events.jsonl"]',
      'events = ["failed", "daemon-start"]',
      '[health]',
      'stall_timeout_ms = 600000',
      'heartbeat_file = "heartbeat"',
      'heartbeat_timeout_ms = 300000',
      'probe_command = ["curl", "-fsS", "http://127.0.0.1:8080/health"]',
      'max_uptime_ms = 86400000',
      '[cgroup]',
      'backstop_factor = 1.5',
      '[metrics]',
      'listen = "127.0.0.1:9464"',
      '',
    ].join('\n'),
  );
  const loaded = loadConfig({
    flags: { project: 'proj' },
    env: { AUTOPILOTD_RESTART_BACKOFF_MULTIPLIER: '1.5', AUTOPILOTD_MEMORY_WORKER_MAX_BYTES: '8GiB', AUTOPILOTD_RESTART_PREVENT_EXIT_CODES: '[3]' },
    homeDir: home.dir,
    cwd: '/',
  });
  const shown = formatConfigShow(loaded);

  // Nothing is null here, so the TOML holds every key with the effective value.
  assert.deepEqual(JSON.parse(JSON.stringify(parse(shown))), JSON.parse(JSON.stringify(loaded.config)));

  const again = home.write('shown.toml', shown);
  const reloaded = loadConfig({ flags: { configPath: again }, env: {}, homeDir: home.dir, cwd: '/' });
  assert.deepEqual(reloaded.config, loaded.config);
  assert.equal(loaded.path, file);
  // Exit codes are integers, in the file, from the environment's JSON, and shown back as TOML integers.
  assert.deepEqual(loaded.config.restart.hold_exit_codes, [75, 76]);
  assert.deepEqual(loaded.config.restart.prevent_exit_codes, [3]);
  assert.match(shown, /^prevent_exit_codes = \[3\]  # env AUTOPILOTD_RESTART_PREVENT_EXIT_CODES$/m);
});

test('config show comments each value with its source', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/daemon.toml', '\n[memory]\ncooldown_ms = 1000\n');
  const shown = formatConfigShow(
    loadConfig({ flags: { project: 'p' }, env: { AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: '1000' }, homeDir: home.dir, cwd: '/' }),
  );
  const lines = shown.split('\n');
  assert.ok(lines.includes('project = "p"  # flag --project'), shown);
  assert.ok(lines.includes('cooldown_ms = 1000  # file:3'), shown);
  assert.ok(lines.includes('poll_interval_ms = 1000  # env AUTOPILOTD_MEMORY_POLL_INTERVAL_MS'), shown);
  assert.ok(lines.includes('min_available_bytes = 2147483648  # default (2 GiB)'), shown);
  assert.ok(lines.includes('backoff_multiplier = 2.0  # default'), shown);
  assert.ok(lines.includes(`# config file: "${home.dir}/.autopilot/daemon.toml"`), shown);
  for (const section of ['[worker]', '[memory]', '[restart]', '[logs]']) assert.equal(lines.filter((line) => line === section).length, 1);
});

test('config show leaves unset optional keys commented out, and they load back as unset', (t) => {
  const home = makeTempHome(t);
  const loaded = loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' });
  const shown = formatConfigShow(loaded);
  assert.match(shown, /^# config file: none \(built-in defaults\)$/m);
  assert.match(shown, /^# project is not set {2}# default$/m);
  assert.match(shown, /^# psi_some_avg10 is not set {2}# default$/m);
  assert.match(shown, /^# worker_max_bytes is not set {2}# default$/m);
  const again = home.write('shown.toml', shown);
  assert.deepEqual(loadConfig({ flags: { configPath: again }, env: {}, homeDir: home.dir, cwd: '/' }).config, loaded.config);
});
