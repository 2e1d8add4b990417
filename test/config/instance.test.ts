// Instances (#16): --instance NAME reads ~/.autopilot/NAME.toml and derives its own socket, PID file
// and log directory; the plain daemon's defaults do not change.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { instanceNameProblem } from '../../src/config/instance.js';
import { loadConfig } from '../../src/config/load.js';
import { expectConfigError, makeTempHome } from './temp-home.js';

test('an instance reads ~/.autopilot/NAME.toml and gets its own socket, PID file and log directory', (t) => {
  const home = makeTempHome(t);
  const file = home.write('.autopilot/web.toml', 'project = "web"\n');
  home.write('.autopilot/daemon.toml', 'project = "plain"\n');
  const loaded = loadConfig({ flags: { instance: 'web' }, env: {}, homeDir: home.dir, cwd: '/' });
  assert.equal(loaded.path, file);
  assert.equal(loaded.config.project, 'web');
  assert.equal(loaded.config.socket_path, path.join(home.dir, '.autopilot/autopilotd@web.sock'));
  assert.equal(loaded.config.pid_file, path.join(home.dir, '.autopilot/autopilotd@web.pid'));
  assert.equal(loaded.config.logs.dir, path.join(home.dir, '.autopilot/logs/autopilotd@web'));
  assert.deepEqual(loaded.sources.socket_path, { kind: 'default' });

  const plain = loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' });
  assert.equal(plain.config.project, 'plain');
  assert.equal(plain.config.socket_path, path.join(home.dir, '.autopilot/autopilotd.sock'), 'the plain daemon keeps its defaults');
  assert.equal(plain.config.pid_file, path.join(home.dir, '.autopilot/autopilotd.pid'));
  assert.equal(plain.config.logs.dir, path.join(home.dir, '.autopilot/logs'));
});

test('two instances never share a default file', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/a.toml', '');
  home.write('.autopilot/b.toml', '');
  const [a, b] = ['a', 'b'].map((instance) => loadConfig({ flags: { instance }, env: {}, homeDir: home.dir, cwd: '/' }).config);
  assert.notEqual(a!.socket_path, b!.socket_path);
  assert.notEqual(a!.pid_file, b!.pid_file);
  assert.notEqual(a!.logs.dir, b!.logs.dir);
});

test('the file and the environment still override an instance default', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/web.toml', 'socket_path = "/run/web.sock"\n');
  const loaded = loadConfig({ flags: { instance: 'web' }, env: { AUTOPILOTD_PID_FILE: '/run/web.pid' }, homeDir: home.dir, cwd: '/' });
  assert.equal(loaded.config.socket_path, '/run/web.sock');
  assert.equal(loaded.config.pid_file, '/run/web.pid');
});

test('--config with --instance reads that file and keeps the instance paths', (t) => {
  const home = makeTempHome(t);
  const file = home.write('elsewhere.toml', 'project = "p"\n');
  const loaded = loadConfig({ flags: { instance: 'web', configPath: file }, env: {}, homeDir: home.dir, cwd: '/' });
  assert.equal(loaded.path, file);
  assert.equal(loaded.config.socket_path, path.join(home.dir, '.autopilot/autopilotd@web.sock'));
});

test('a missing instance file is an error naming --instance and the path, with a hint', (t) => {
  const home = makeTempHome(t);
  const error = expectConfigError(() => loadConfig({ flags: { instance: 'typo' }, env: {}, homeDir: home.dir, cwd: '/' }));
  assert.equal(error.problems.length, 1);
  assert.match(error.message, /^flag --instance: cannot read config file: ENOENT/);
  assert.ok(error.message.includes(path.join(home.dir, '.autopilot/typo.toml')), error.message);
  assert.match(error.message, /create it/);
});

test('instance names: letters, digits, _ . - and at most 64 characters, starting with a letter or digit', () => {
  for (const good of ['web', 'Proj_2', 'a.b-c', 'x'.repeat(64), '0']) assert.equal(instanceNameProblem(good), null, good);
  for (const bad of ['', '-x', '.hidden', 'a/b', 'a b', '..', 'x'.repeat(65), 'a\\x2d', 'é', 'a@b', 'a:b']) {
    assert.match(instanceNameProblem(bad) ?? '', /is not valid/, JSON.stringify(bad));
  }
});
