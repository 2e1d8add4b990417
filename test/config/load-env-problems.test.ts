// Bad AUTOPILOTD_* variables: each must fail with a ConfigError naming the variable and the key.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { expectConfigError, makeTempHome } from './temp-home.js';

interface BadVariable {
  name: string;
  value: string;
  key: string;
  says?: string[];
}

const BAD_VARIABLES: BadVariable[] = [
  { name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', value: 'fast', key: 'memory.poll_interval_ms', says: ['expected an integer >= 100 (milliseconds), got "fast"'] },
  { name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', value: '10s', key: 'memory.poll_interval_ms', says: ['got "10s"'] },
  { name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', value: '1e3', key: 'memory.poll_interval_ms', says: ['got "1e3"'] },
  { name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', value: '', key: 'memory.poll_interval_ms', says: ['got ""'] },
  { name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', value: '5000.0', key: 'memory.poll_interval_ms' },
  { name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', value: '99', key: 'memory.poll_interval_ms', says: ['got "99"'] },
  { name: 'AUTOPILOTD_WORKER_STOP_TIMEOUT_MS', value: '-1', key: 'worker.stop_timeout_ms', says: ['an integer >= 0'] },
  { name: 'AUTOPILOTD_RESTART_MAX_CONSECUTIVE_RESTARTS', value: '0', key: 'restart.max_consecutive_restarts' },
  { name: 'AUTOPILOTD_RESTART_BACKOFF_MULTIPLIER', value: 'double', key: 'restart.backoff_multiplier', says: ['a number >= 1'] },
  { name: 'AUTOPILOTD_RESTART_BACKOFF_MULTIPLIER', value: '0.5', key: 'restart.backoff_multiplier' },
  { name: 'AUTOPILOTD_MEMORY_MIN_AVAILABLE_BYTES', value: '2 gigs', key: 'memory.min_available_bytes', says: ['unknown unit "gigs"'] },
  { name: 'AUTOPILOTD_MEMORY_WORKER_MAX_BYTES', value: '0', key: 'memory.worker_max_bytes', says: ['a size > 0'] },
  { name: 'AUTOPILOTD_MEMORY_PSI_SOME_AVG10', value: '101', key: 'memory.psi_some_avg10' },
  { name: 'AUTOPILOTD_MEMORY_HOG_SCOPE', value: 'everyone', key: 'memory.hog_scope' },
  { name: 'AUTOPILOTD_LOG_LEVEL', value: 'warning', key: 'log_level', says: ['did you mean "warn"?'] },
  { name: 'AUTOPILOTD_PROJECT', value: '', key: 'project', says: ['a non-empty string, got ""'] },
  { name: 'AUTOPILOTD_WORKER_COMMAND', value: 'cargo run', key: 'worker.command', says: ['a JSON array of strings'] },
  { name: 'AUTOPILOTD_WORKER_COMMAND', value: '[]', key: 'worker.command', says: ['a non-empty array'] },
  { name: 'AUTOPILOTD_WORKER_COMMAND', value: '{"argv": ["node"]}', key: 'worker.command' },
  { name: 'AUTOPILOTD_WORKER_COMMAND', value: '["node", 1]', key: 'worker.command[1]', says: ['expected a string, got 1'] },
  { name: 'AUTOPILOTD_WORKER_COMMAND', value: '[""]', key: 'worker.command[0]' },
  { name: 'AUTOPILOTD_MEMORY_HOG_NAMES', value: '["node", ""]', key: 'memory.hog_names[1]' },
  { name: 'AUTOPILOTD_RESTART_PREVENT_EXIT_CODES', value: '3', key: 'restart.prevent_exit_codes' },
  { name: 'AUTOPILOTD_RESTART_HOLD_EXIT_CODES', value: '[75.5]', key: 'restart.hold_exit_codes[0]' },
  { name: 'AUTOPILOTD_WORKER_ENV', value: '["A=1"]', key: 'worker.env' },
  { name: 'AUTOPILOTD_WORKER_ENV', value: 'A=1', key: 'worker.env', says: ['a JSON object of strings'] },
  { name: 'AUTOPILOTD_WORKER_ENV', value: '{"A": 1}', key: 'worker.env.A', says: ['a string value, got 1'] },
  { name: 'AUTOPILOTD_WORKER_ENV', value: '{"AUTOPILOTD_INSTANCE": "x"}', key: 'worker.env.AUTOPILOTD_INSTANCE' },
  { name: 'AUTOPILOTD_SOCKET_PATH', value: `/tmp/${'s'.repeat(110)}`, key: 'socket_path', says: ['at most 107 bytes'] },
  { name: 'AUTOPILOTD_LOGS_MAX_FILE_BYTES', value: '64KB', key: 'logs.max_file_bytes', says: ['>= 65536'] },
];

for (const bad of BAD_VARIABLES) {
  test(`${bad.name}=${JSON.stringify(bad.value)} is rejected naming the variable and ${bad.key}`, () => {
    const error = expectConfigError(() => loadConfig({ flags: {}, env: { [bad.name]: bad.value }, homeDir: '/nonexistent-home', cwd: '/' }));
    assert.equal(error.problems.length, 1, error.message);
    const [problem] = error.problems;
    assert.equal(problem?.source, 'env');
    assert.equal(problem?.envName, bad.name);
    assert.equal(problem?.key, bad.key);
    assert.ok(error.message.startsWith(`environment ${bad.name}: ${bad.key}: expected `), error.message);
    for (const text of bad.says ?? []) assert.ok(error.message.includes(text), `message lacks ${JSON.stringify(text)}:\n${error.message}`);
  });
}

test('an unknown AUTOPILOTD_ variable is an error with the closest known name', () => {
  const error = expectConfigError(() =>
    loadConfig({ flags: {}, env: { AUTOPILOTD_MEMORY_POLL_INTERVAL: '1000' }, homeDir: '/nonexistent-home', cwd: '/' }),
  );
  assert.equal(error.message, 'environment AUTOPILOTD_MEMORY_POLL_INTERVAL: unknown variable; did you mean AUTOPILOTD_MEMORY_POLL_INTERVAL_MS?');
});

test('an unknown variable far from every known name gets no suggestion', () => {
  const error = expectConfigError(() => loadConfig({ flags: {}, env: { AUTOPILOTD_COLOUR_SCHEME: 'dark' }, homeDir: '/nonexistent-home', cwd: '/' }));
  assert.equal(error.message, 'environment AUTOPILOTD_COLOUR_SCHEME: unknown variable');
});

test('the variables the daemon sets for its worker are not settings and are ignored', () => {
  const loaded = loadConfig({
    flags: {},
    env: { AUTOPILOTD_INSTANCE: 'abc', AUTOPILOTD_GENERATION: '7', AUTOPILOTD_HOLD_UNTIL_FILE: '/tmp/h', AUTOPILOTD: 'x', PATH: '/bin', autopilotd_project: 'lower' },
    homeDir: '/nonexistent-home',
    cwd: '/',
  });
  assert.equal(loaded.config.project, null);
  assert.equal(loaded.path, null);
});

test('an empty AUTOPILOTD_CONFIG is an error, not the default file', () => {
  const error = expectConfigError(() => loadConfig({ flags: {}, env: { AUTOPILOTD_CONFIG: '' }, homeDir: '/nonexistent-home', cwd: '/' }));
  assert.equal(error.message, 'environment AUTOPILOTD_CONFIG: expected a path to a TOML file, got ""');
});

test('a default socket path made too long by a deep home directory is reported as the default', (t) => {
  const home = makeTempHome(t);
  const deepHome = `${home.dir}/${'h'.repeat(100)}`;
  const error = expectConfigError(() => loadConfig({ flags: {}, env: {}, homeDir: deepHome, cwd: '/' }));
  assert.equal(error.problems[0]?.source, 'default');
  assert.match(error.message, /^built-in default: socket_path: expected a path of at most 107 bytes/);
  assert.match(error.message, /set a shorter socket_path/);
});
