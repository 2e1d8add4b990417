// loadConfig on valid input: layering, sources, path resolution, and which file is read.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CONFIG_PATH, DEFAULTS, loadConfig } from '../../src/config/load.js';
import { expectConfigError, makeTempHome } from './temp-home.js';

test('with no file, no variables and no flags the defaults apply, with ~ expanded', (t) => {
  const home = makeTempHome(t);
  const loaded = loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' });
  assert.equal(loaded.path, null);
  assert.deepEqual(loaded.config, {
    ...DEFAULTS,
    working_dir: path.join(home.dir, 'code/openagents'),
    socket_path: path.join(home.dir, '.autopilot/autopilotd.sock'),
    pid_file: path.join(home.dir, '.autopilot/autopilotd.pid'),
    logs: { ...DEFAULTS.logs, dir: path.join(home.dir, '.autopilot/logs') },
  });
  assert.equal(loaded.config.memory.min_available_bytes, 2147483648);
  assert.equal(loaded.config.logs.max_file_bytes, 10485760);
  assert.equal(loaded.config.log_level, 'info');
  assert.ok(Object.values(loaded.sources).every((source) => source.kind === 'default'));
  assert.equal(Object.keys(loaded.sources).length, 49);
});

test('the default file is ~/.autopilot/daemon.toml and is read when it exists', (t) => {
  const home = makeTempHome(t);
  const file = home.write('.autopilot/daemon.toml', 'project = "from-default-file"\n');
  assert.equal(DEFAULT_CONFIG_PATH, '~/.autopilot/daemon.toml');
  const loaded = loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' });
  assert.equal(loaded.path, file);
  assert.equal(loaded.config.project, 'from-default-file');
  assert.deepEqual(loaded.sources.project, { kind: 'file', path: file, line: 1 });
});

test('a missing file named by --config is an error naming the flag and the path', (t) => {
  const home = makeTempHome(t);
  const missing = path.join(home.dir, 'nope.toml');
  const error = expectConfigError(() => loadConfig({ flags: { configPath: missing }, env: {}, homeDir: home.dir, cwd: '/' }));
  assert.equal(error.problems.length, 1);
  assert.equal(error.problems[0]?.source, 'flag');
  assert.match(error.message, /^flag --config: cannot read config file: ENOENT: no such file or directory/);
  assert.ok(error.message.includes(missing), error.message);
});

test('a missing file named by AUTOPILOTD_CONFIG is an error naming the variable', (t) => {
  const home = makeTempHome(t);
  const error = expectConfigError(() => loadConfig({ flags: {}, env: { AUTOPILOTD_CONFIG: 'rel/nope.toml' }, homeDir: home.dir, cwd: home.dir }));
  assert.match(error.message, /^environment AUTOPILOTD_CONFIG: cannot read config file: ENOENT/);
  assert.ok(error.message.includes(path.join(home.dir, 'rel/nope.toml')), error.message);
});

test('a default file that exists but is a directory is an error, not a missing file', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/daemon.toml/inner', '');
  const error = expectConfigError(() => loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' }));
  assert.match(error.message, /daemon\.toml: cannot read config file: EISDIR/);
});

test('--config wins over AUTOPILOTD_CONFIG, which wins over the default file', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/daemon.toml', 'project = "default-file"\n');
  const fromEnv = home.write('env.toml', 'project = "env-file"\n');
  const fromFlag = home.write('flag.toml', 'project = "flag-file"\n');
  const load = (flags: { configPath?: string }, env: Record<string, string>) => loadConfig({ flags, env, homeDir: home.dir, cwd: home.dir });
  assert.equal(load({}, {}).config.project, 'default-file');
  assert.equal(load({}, { AUTOPILOTD_CONFIG: fromEnv }).config.project, 'env-file');
  assert.equal(load({ configPath: fromFlag }, { AUTOPILOTD_CONFIG: fromEnv }).config.project, 'flag-file');
  // The flag's file is read even when the variable names a file that does not exist.
  assert.equal(load({ configPath: 'flag.toml' }, { AUTOPILOTD_CONFIG: '/nonexistent.toml' }).path, fromFlag);
});

test('each layer overrides the one below: default < file < environment < flag', (t) => {
  const home = makeTempHome(t);
  const file = home.write(
    'cfg/daemon.toml',
    ['project = "file-project"', 'working_dir = "/file/work"', '[worker]', 'command = ["file-cmd"]', '[memory]', 'poll_interval_ms = 2000', 'cooldown_ms = 7000', ''].join('\n'),
  );
  const base = { homeDir: home.dir, cwd: '/cwd' };
  const env = { AUTOPILOTD_PROJECT: 'env-project', AUTOPILOTD_WORKING_DIR: '/env/work', AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: '1000' };

  const fileOnly = loadConfig({ ...base, flags: { configPath: file }, env: {} });
  assert.equal(fileOnly.config.memory.poll_interval_ms, 2000);
  assert.deepEqual(fileOnly.sources['memory.poll_interval_ms'], { kind: 'file', path: file, line: 6 });
  assert.deepEqual(fileOnly.sources['memory.kill_grace_ms'], { kind: 'default' });

  const withEnv = loadConfig({ ...base, flags: { configPath: file }, env });
  assert.equal(withEnv.config.project, 'env-project');
  assert.equal(withEnv.config.working_dir, '/env/work');
  assert.equal(withEnv.config.memory.poll_interval_ms, 1000);
  assert.equal(withEnv.config.memory.cooldown_ms, 7000);
  assert.deepEqual(withEnv.sources['memory.poll_interval_ms'], { kind: 'env', name: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS' });
  assert.deepEqual(withEnv.sources['memory.cooldown_ms'], { kind: 'file', path: file, line: 7 });

  const withFlags = loadConfig({ ...base, flags: { configPath: file, project: 'flag-project', workdir: 'rel/work', workerCommand: ['node', 'w.js'] }, env });
  assert.equal(withFlags.config.project, 'flag-project');
  assert.equal(withFlags.config.working_dir, '/cwd/rel/work');
  assert.deepEqual(withFlags.config.worker.command, ['node', 'w.js']);
  assert.deepEqual(withFlags.sources.project, { kind: 'flag', name: '--project' });
  assert.deepEqual(withFlags.sources.working_dir, { kind: 'flag', name: '--workdir' });
  assert.deepEqual(withFlags.sources['worker.command'], { kind: 'flag', name: '-- <worker argv>' });
  assert.equal(withFlags.config.memory.poll_interval_ms, 1000);
});

test('environment values are coerced by the type of their key', () => {
  const loaded = loadConfig({
    flags: {},
    env: {
      AUTOPILOTD_WORKER_STOP_TIMEOUT_MS: '0',
      AUTOPILOTD_WORKER_COMMAND: '["node", "worker.js", "--flag"]',
      AUTOPILOTD_WORKER_ENV: '{"RUST_LOG": "debug", "EMPTY": ""}',
      AUTOPILOTD_WORKER_RESTART: 'on-failure',
      AUTOPILOTD_MEMORY_HOG_NAMES: '["node"]',
      AUTOPILOTD_MEMORY_WORKER_MAX_BYTES: '1.5GiB',
      AUTOPILOTD_MEMORY_PSI_SOME_AVG10: '12.5',
      AUTOPILOTD_RESTART_BACKOFF_MULTIPLIER: '1.5',
      AUTOPILOTD_LOGS_MAX_FILES: '+3',
      AUTOPILOTD_LOG_LEVEL: 'debug',
    },
    homeDir: '/nonexistent-home',
    cwd: '/',
  });
  const { worker, memory, restart, logs, log_level } = loaded.config;
  assert.equal(worker.stop_timeout_ms, 0);
  assert.deepEqual(worker.command, ['node', 'worker.js', '--flag']);
  assert.deepEqual(worker.env, { RUST_LOG: 'debug', EMPTY: '' });
  assert.equal(worker.restart, 'on-failure');
  assert.deepEqual(memory.hog_names, ['node']);
  assert.equal(memory.worker_max_bytes, 1610612736);
  assert.equal(memory.psi_some_avg10, 12.5);
  assert.equal(restart.backoff_multiplier, 1.5);
  assert.equal(logs.max_files, 3);
  assert.equal(log_level, 'debug');
});

test('size strings in the file become whole bytes, with decimal and binary units', (t) => {
  const home = makeTempHome(t);
  const file = home.write(
    'daemon.toml',
    ['[memory]', 'min_available_bytes = "3GB"', 'critical_threshold_bytes = "512MiB"', 'node_kill_threshold_bytes = 1000', 'worker_max_bytes = "1.5gib"', '[logs]', 'max_file_bytes = "100KiB"', ''].join('\n'),
  );
  const { memory, logs } = loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: '/' }).config;
  assert.equal(memory.min_available_bytes, 3_000_000_000);
  assert.equal(memory.critical_threshold_bytes, 536_870_912);
  assert.equal(memory.node_kill_threshold_bytes, 1000);
  assert.equal(memory.worker_max_bytes, 1_610_612_736);
  assert.equal(logs.max_file_bytes, 102_400);
});

test('paths in the file expand ~ and resolve against the file directory, not the cwd', (t) => {
  const home = makeTempHome(t);
  const file = home.write(
    'etc/autopilot/daemon.toml',
    ['working_dir = "~"', 'socket_path = "run/d.sock"', 'pid_file = "../d.pid"', '[logs]', 'dir = "~/logs/"', ''].join('\n'),
  );
  const { config } = loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: '/somewhere/else' });
  assert.equal(config.working_dir, home.dir);
  assert.equal(config.socket_path, path.join(home.dir, 'etc/autopilot/run/d.sock'));
  assert.equal(config.pid_file, path.join(home.dir, 'etc/d.pid'));
  assert.equal(config.logs.dir, path.join(home.dir, 'logs'));
});

test('relative paths from the environment and flags resolve against the cwd; ~user is not expanded', (t) => {
  const home = makeTempHome(t);
  const { config } = loadConfig({
    flags: { workdir: '~user/project' },
    env: { AUTOPILOTD_PID_FILE: 'run/d.pid', AUTOPILOTD_LOGS_DIR: '~/l' },
    homeDir: home.dir,
    cwd: '/work/here',
  });
  assert.equal(config.working_dir, '/work/here/~user/project');
  assert.equal(config.pid_file, '/work/here/run/d.pid');
  assert.equal(config.logs.dir, path.join(home.dir, 'l'));
});

test('a relative --config path resolves against the cwd and its relative paths against its own directory', (t) => {
  const home = makeTempHome(t);
  home.write('proj/conf/daemon.toml', 'working_dir = ".."\n');
  const loaded = loadConfig({ flags: { configPath: 'conf/daemon.toml' }, env: {}, homeDir: '/nonexistent-home', cwd: path.join(home.dir, 'proj') });
  assert.equal(loaded.path, path.join(home.dir, 'proj/conf/daemon.toml'));
  assert.equal(loaded.config.working_dir, path.join(home.dir, 'proj'));
});

test('a socket path of exactly 107 bytes is accepted', () => {
  const socketPath = `/tmp/${'s'.repeat(102)}`;
  assert.equal(Buffer.byteLength(socketPath), 107);
  const loaded = loadConfig({ flags: {}, env: { AUTOPILOTD_SOCKET_PATH: socketPath }, homeDir: '/h', cwd: '/' });
  assert.equal(loaded.config.socket_path, socketPath);
});

test('worker.env from the file keeps names that are unusual but legal', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', '[worker.env]\nconstructor = "a"\n"my.var" = "b"\nEMPTY = ""\n');
  const { config } = loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: '/' });
  assert.deepEqual(config.worker.env, { constructor: 'a', 'my.var': 'b', EMPTY: '' });
});

test('changing a loaded configuration does not change the defaults of the next load', () => {
  const first = loadConfig({ flags: {}, env: {}, homeDir: '/h', cwd: '/' });
  first.config.memory.hog_names.push('python');
  first.config.worker.command[0] = 'changed';
  const second = loadConfig({ flags: {}, env: {}, homeDir: '/h', cwd: '/' });
  assert.deepEqual(second.config.memory.hog_names, ['node', 'claude']);
  assert.equal(second.config.worker.command[0], 'cargo');
  assert.ok(Object.isFrozen(DEFAULTS.memory.hog_names));
});
