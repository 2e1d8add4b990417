// Cross-key rules on the daemon's files (issue #15, item 4): mistakes that used to show only when the
// daemon ran (a pid file on the socket, a socket directory too long for the temporary bind name)
// are configuration problems at the key's line.
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { longestBoundSocketPath, MAX_SOCKET_PATH_BYTES } from '../../src/config/paths.js';
import { daemonLogPath, daemonStderrPath } from '../../src/daemon/log-path.js';
import { lockPathFor } from '../../src/os/instance-lock.js';
import { instanceRecordPath } from '../../src/os/pid-file.js';
import { expectConfigError, makeTempHome } from './temp-home.js';

interface Clash {
  name: string;
  /** Top-level keys and a [logs] table; paths relative to the file's directory. */
  toml: string;
  key: string;
  line: number;
  says: string[];
}

const SOCKET = 'socket_path = "run/d.sock"';
const PID = 'pid_file = "d.pid"';
const LOGS = '[logs]\ndir = "logs"\nmax_files = 3';

const CLASHES: Clash[] = [
  { name: 'pid_file equal to socket_path', toml: `${SOCKET}\npid_file = "run/d.sock"\n${LOGS}`, key: 'pid_file', line: 2, says: ['clashes with socket_path', 'both would use', '/run/d.sock;'] },
  { name: "pid_file on socket_path's lock file", toml: `${SOCKET}\npid_file = "run/d.sock.lock"\n${LOGS}`, key: 'pid_file', line: 2, says: ['both would use', '/run/d.sock.lock;'] },
  { name: "socket_path on pid_file's instance record", toml: `socket_path = "d.pid.instance"\n${PID}\n${LOGS}`, key: 'pid_file', line: 2, says: ['both would use', '/d.pid.instance;'] },
  { name: 'socket_path where pid_file needs its directory', toml: `socket_path = "run"\npid_file = "run/d.pid"\n${LOGS}`, key: 'pid_file', line: 2, says: ['pid_file needs', 'to be a directory', "is socket_path's file"] },
  { name: 'logs.dir under the pid file', toml: `${SOCKET}\n${PID}\n[logs]\ndir = "d.pid/logs"`, key: 'pid_file', line: 2, says: ['logs.dir needs', "is pid_file's file"] },
  { name: 'pid_file on a rotated log file', toml: `${SOCKET}\npid_file = "logs/autopilotd.log.2"\n${LOGS}`, key: 'pid_file', line: 2, says: ['clashes with logs.dir', 'autopilotd.log.2;'] },
  { name: "socket_path on the daemon's raw output file", toml: `socket_path = "logs/autopilotd.stderr.log"\n${PID}\n${LOGS}`, key: 'socket_path', line: 1, says: ['clashes with logs.dir'] },
];

for (const clash of CLASHES) {
  test(`issue #15: a config file with ${clash.name} is rejected at its line`, (t) => {
    const home = makeTempHome(t);
    const file = home.write('conf/daemon.toml', `${clash.toml}\n`);
    const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir }));
    assert.equal(error.exitCode, 78);
    assert.equal(error.problems.length, 1, error.message);
    const where = `${file}:${clash.line}:1: ${clash.key}: `;
    assert.ok(error.message.startsWith(where), `message lacks ${JSON.stringify(where)}:\n${error.message}`);
    for (const text of clash.says) assert.ok(error.message.includes(text), `message lacks ${JSON.stringify(text)}:\n${error.message}`);
    assert.match(error.message, /give \S+ a path of its own$/);
  });
}

test('issue #15: a clash is reported at the key set by the higher-precedence source', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', `${SOCKET}\n${PID}\n`);
  const env = { AUTOPILOTD_SOCKET_PATH: join(home.dir, 'd.pid') };
  const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env, homeDir: home.dir, cwd: home.dir }));
  assert.match(error.message, new RegExp(`^environment AUTOPILOTD_SOCKET_PATH: socket_path: .* clashes with pid_file \\(".*/d\\.pid", from file:2\\)`));
});

test('a rotated log file past max_files is no clash, nor are shared directories', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', `socket_path = "logs/d.sock"\npid_file = "logs/autopilotd.log.3"\n${LOGS}\n`);
  const loaded = loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir });
  assert.equal(loaded.config.pid_file, join(home.dir, 'logs/autopilotd.log.3'));
});

test('issue #15: a socket_path within 107 bytes whose temporary bind name is not is rejected at its line', (t) => {
  const home = makeTempHome(t);
  // The socket path is 102 bytes, its directory 100: `<dir>/.xxxxxxxx` would be 110.
  const dir = `/tmp/${'d'.repeat(95)}`;
  const socketPath = `${dir}/s`;
  assert.ok(Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES);
  assert.equal(longestBoundSocketPath(socketPath), 110);
  const file = home.write('daemon.toml', `socket_path = "${socketPath}"\n`);
  const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir }));
  assert.equal(error.message, `${file}:1:1: socket_path: expected a path of at most 107 bytes once resolved, in a directory of at most 97 bytes (the Unix socket limit; the socket is bound as <dir>/.xxxxxxxx first), got "${socketPath}" (its directory is 100 bytes); set a shorter socket_path, e.g. under $XDG_RUNTIME_DIR`);
  // One byte shorter directory still fits.
  const fits = home.write('fits.toml', `socket_path = "/tmp/${'d'.repeat(92)}/s"\n`);
  assert.equal(loadConfig({ flags: { configPath: fits }, env: {}, homeDir: home.dir, cwd: home.dir }).config.socket_path, `/tmp/${'d'.repeat(92)}/s`);
});

test("the rules know the daemon's file names as the daemon makes them", () => {
  // rules.ts cannot import src/os or src/daemon (config stays below them); this keeps the copies equal.
  assert.equal(lockPathFor('/r/d.sock'), '/r/d.sock.lock');
  assert.equal(instanceRecordPath('/r/d.pid'), '/r/d.pid.instance');
  assert.equal(daemonLogPath({ logs: { dir: '/l', max_file_bytes: 1, max_files: 1 } }), '/l/autopilotd.log');
  assert.equal(daemonStderrPath({ logs: { dir: '/l', max_file_bytes: 1, max_files: 1 } }), '/l/autopilotd.stderr.log');
});
