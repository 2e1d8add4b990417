// The [health] section (issue #17): every signal off by default, values and environment overrides
// taken as given, bad values rejected at their line like every config error.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { expectConfigError, makeTempHome } from './temp-home.js';

test('with no [health] section every signal is off and the documented defaults apply', (t) => {
  const home = makeTempHome(t);
  const { config } = loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' });
  assert.deepEqual(config.health, {
    stall_timeout_ms: null,
    stall_cpu_ms: 50,
    heartbeat_file: null,
    heartbeat_timeout_ms: null,
    probe_command: null,
    probe_interval_ms: 30_000,
    probe_timeout_ms: 10_000,
    probe_failures: 3,
    max_uptime_ms: null,
    start_grace_ms: 60_000,
  });
});

test('every [health] key is read from the file, the heartbeat path resolved against the file', (t) => {
  const home = makeTempHome(t);
  const file = home.write('conf/daemon.toml', [
    '[health]',
    'stall_timeout_ms = 600000',
    'stall_cpu_ms = 0',
    'heartbeat_file = "run/heartbeat"',
    'heartbeat_timeout_ms = 120000',
    'probe_command = ["curl", "-fsS", "http://127.0.0.1:8080/health"]',
    'probe_interval_ms = 15000',
    'probe_timeout_ms = 5000',
    'probe_failures = 5',
    'max_uptime_ms = 86400000',
    'start_grace_ms = 0',
    '',
  ].join('\n'));
  const { config, sources } = loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: '/' });
  assert.deepEqual(config.health, {
    stall_timeout_ms: 600_000,
    stall_cpu_ms: 0,
    heartbeat_file: path.join(home.dir, 'conf/run/heartbeat'),
    heartbeat_timeout_ms: 120_000,
    probe_command: ['curl', '-fsS', 'http://127.0.0.1:8080/health'],
    probe_interval_ms: 15_000,
    probe_timeout_ms: 5000,
    probe_failures: 5,
    max_uptime_ms: 86_400_000,
    start_grace_ms: 0,
  });
  assert.deepEqual(sources['health.probe_failures'], { kind: 'file', path: file, line: 9 });
});

test('[health] keys can be set from the environment', (t) => {
  const home = makeTempHome(t);
  const { config } = loadConfig({
    flags: {},
    env: { AUTOPILOTD_HEALTH_STALL_TIMEOUT_MS: '900000', AUTOPILOTD_HEALTH_PROBE_COMMAND: '["true"]', AUTOPILOTD_HEALTH_MAX_UPTIME_MS: '3600000' },
    homeDir: home.dir,
    cwd: '/',
  });
  assert.equal(config.health.stall_timeout_ms, 900_000);
  assert.deepEqual(config.health.probe_command, ['true']);
  assert.equal(config.health.max_uptime_ms, 3_600_000);
});

const BAD: Array<{ name: string; toml: string; key: string; line: number; says: string }> = [
  { name: 'a zero stall timeout', toml: '[health]\nstall_timeout_ms = 0\n', key: 'health.stall_timeout_ms', line: 2, says: 'an integer > 0 (milliseconds), got 0' },
  { name: 'a negative CPU tolerance', toml: '[health]\nstall_cpu_ms = -1\n', key: 'health.stall_cpu_ms', line: 2, says: 'an integer >= 0' },
  { name: 'a stall timeout with a unit', toml: '[health]\nstall_timeout_ms = "10m"\n', key: 'health.stall_timeout_ms', line: 2, says: 'whole milliseconds' },
  { name: 'a probe given as one string', toml: '[health]\nprobe_command = "curl -f http://x"\n', key: 'health.probe_command', line: 2, says: 'an array of strings' },
  { name: 'an empty probe', toml: '[health]\nprobe_command = []\n', key: 'health.probe_command', line: 2, says: 'a non-empty array' },
  { name: 'a probe interval below 100 ms', toml: '[health]\nprobe_interval_ms = 10\n', key: 'health.probe_interval_ms', line: 2, says: 'an integer >= 100' },
  { name: 'a zero probe timeout', toml: '[health]\nprobe_timeout_ms = 0\n', key: 'health.probe_timeout_ms', line: 2, says: 'an integer > 0' },
  { name: 'zero probe failures', toml: '[health]\nprobe_failures = 0\n', key: 'health.probe_failures', line: 2, says: 'an integer >= 1' },
  { name: 'a fractional max uptime', toml: '[health]\nmax_uptime_ms = 1.5\n', key: 'health.max_uptime_ms', line: 2, says: 'got 1.5' },
  { name: 'a negative start grace', toml: '[health]\nstart_grace_ms = -5\n', key: 'health.start_grace_ms', line: 2, says: 'an integer >= 0' },
  { name: 'an empty heartbeat path', toml: '[health]\nheartbeat_file = ""\nheartbeat_timeout_ms = 1000\n', key: 'health.heartbeat_file', line: 2, says: 'a non-empty path' },
  { name: 'a heartbeat file without its timeout', toml: '[health]\n\nheartbeat_file = "/tmp/hb"\n', key: 'health.heartbeat_file', line: 3, says: 'expected to be set together with health.heartbeat_timeout_ms' },
  { name: 'a heartbeat timeout without its file', toml: '[health]\nheartbeat_timeout_ms = 1000\n', key: 'health.heartbeat_timeout_ms', line: 2, says: 'set health.heartbeat_file too' },
  { name: 'a misspelt key', toml: '[health]\nstall_timout_ms = 1000\n', key: 'health.stall_timout_ms', line: 2, says: 'did you mean "stall_timeout_ms"?' },
];

for (const bad of BAD) {
  test(`a [health] section with ${bad.name} is rejected at its line (exit 78)`, (t) => {
    const home = makeTempHome(t);
    const file = home.write('conf/daemon.toml', bad.toml);
    const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir }));
    assert.equal(error.exitCode, 78);
    const where = `${file}:${bad.line}:1: ${bad.key}: `;
    assert.ok(error.message.includes(where), `message lacks ${JSON.stringify(where)}:\n${error.message}`);
    assert.ok(error.message.includes(bad.says), `message lacks ${JSON.stringify(bad.says)}:\n${error.message}`);
  });
}

test('a bad [health] value from the environment names the variable and the key', (t) => {
  const home = makeTempHome(t);
  const error = expectConfigError(() => loadConfig({ flags: {}, env: { AUTOPILOTD_HEALTH_PROBE_FAILURES: 'many' }, homeDir: home.dir, cwd: '/' }));
  assert.ok(error.message.includes('environment AUTOPILOTD_HEALTH_PROBE_FAILURES: health.probe_failures: '), error.message);
});
