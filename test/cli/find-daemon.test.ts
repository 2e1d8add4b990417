// How a command finds the daemon when its configuration is missing, unreadable or broken (issue
// #14, item 5): a file named explicitly must exist, and a broken file never hides a running daemon
// nor leads a command to another one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusData } from '../../src/control/protocol.js';
import { isAlive } from '../helpers/daemon.js';
import { SLEEP_WORKER, sandbox, type Sandbox } from '../helpers/sandbox.js';

/**
 * Makes the sandbox dir the CLI's HOME, with a default config file (~/.autopilot/daemon.toml) that
 * leaves socket, pid file and logs at their defaults: the daemon `autopilotd start` runs there
 * without --config is "the default daemon".
 */
function homeWithDefaultDaemon(box: Sandbox): Record<string, string> {
  mkdirSync(join(box.dir, '.autopilot'), { mode: 0o700 });
  writeFileSync(join(box.dir, '.autopilot', 'daemon.toml'), `working_dir = ${JSON.stringify(box.dir)}\n${SLEEP_WORKER}`);
  return { HOME: box.dir };
}

/** Status of the daemon reached with `args` (exit 0 expected). */
async function statusVia(box: Sandbox, args: string[], env: Record<string, string>): Promise<StatusData> {
  const r = await box.cli(['status', '--json', ...args], { env, noConfigFlag: true });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusData;
}

/** `autopilotd start --config <config>`; the printed pids. */
async function startWith(box: Sandbox, config: string, env: Record<string, string>): Promise<{ pid: number; workerPid: number }> {
  const r = await box.cli(['start', '--config', config], { env, noConfigFlag: true });
  box.remember();
  assert.equal(r.code, 0, r.stderr);
  const m = /^autopilotd started: pid (\d+), worker pid (\d+)\n$/.exec(r.stdout);
  assert.ok(m, r.stdout);
  box.daemonPids.add(Number(m[1]));
  return { pid: Number(m[1]), workerPid: Number(m[2]) };
}

const COMMANDS = [['status'], ['stop'], ['restart-worker'], ['stop-worker'], ['start-worker'], ['reload'], ['logs'], ['start'], ['config', 'check'], ['config', 'show']];

test('issue #14 (5): --config or AUTOPILOTD_CONFIG naming a missing or unreadable file: every command exits 78 naming it; the default daemon is untouched', async (t) => {
  const box = sandbox(t);
  const env = homeWithDefaultDaemon(box);
  const { pid, workerPid } = await box.start({ env, noConfigFlag: true });
  const directory = join(box.dir, 'a-directory.toml');
  mkdirSync(directory);
  const named = [join(box.dir, 'typo.toml'), directory];
  if (process.getuid!() !== 0) {
    // root reads a mode-000 file all the same; a directory is unreadable for everyone.
    const locked = join(box.dir, 'mode-000.toml');
    writeFileSync(locked, readFileSync(box.configPath));
    chmodSync(locked, 0);
    named.push(locked);
  }
  for (const path of named) {
    for (const command of COMMANDS) {
      for (const r of [
        await box.cli([...command, '--config', path], { env, noConfigFlag: true }),
        await box.cli(command, { env: { ...env, AUTOPILOTD_CONFIG: path }, noConfigFlag: true }),
      ]) {
        const what = `${command.join(' ')} with ${path}: ${r.stdout}${r.stderr}`;
        assert.equal(r.code, 78, what);
        assert.ok(r.stderr.includes(path), what);
        assert.equal(r.stdout, '', what);
      }
    }
  }
  const status = await statusVia(box, [], env);
  assert.deepEqual([status.daemon.pid, status.worker.pid, status.worker.state, status.worker.generation], [pid, workerPid, 'running', 1]);
  assert.equal((await box.cli(['stop'], { env, noConfigFlag: true })).code, 0);
});

test('issue #14 (5): a running daemon whose file got a syntax error is found through its pid file when the rest names it: status, logs and stop reach it', async (t) => {
  const box = sandbox(t);
  // The pid file comes from the environment, so the rest of the configuration still gives it.
  const env = { HOME: box.dir, AUTOPILOTD_PID_FILE: box.pidFile };
  const { pid, workerPid } = await startWith(box, box.configPath, env);
  writeFileSync(box.configPath, `this is = = not TOML\n${readFileSync(box.configPath, 'utf8')}`);

  const status = await box.cli(['status'], { env });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stderr, /^autopilotd: warning: the configuration has problems/);
  assert.ok(status.stderr.includes(`${box.configPath}:1:`), status.stderr);
  assert.ok(status.stderr.includes(`found the daemon (pid ${pid}) through its pid file ${box.pidFile}`), status.stderr);
  assert.match(status.stdout, new RegExp(`: running, pid ${pid}, up [^]*\\n  worker: +running, pid ${workerPid}, `));

  const logs = await box.cli(['logs', '-n', '200'], { env });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, new RegExp(`daemon started pid=${pid} `), 'logs reads the file the daemon says it writes');

  const stop = await box.cli(['stop'], { env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, `autopilotd stopped (pid ${pid})\n`);
  assert.ok(!isAlive(pid) && !isAlive(workerPid));
});

test('issue #14 (5): a file broken so that the daemon cannot be told: commands fail with 78 and touch no daemon, not even the default one', async (t) => {
  const box = sandbox(t);
  const env = homeWithDefaultDaemon(box);
  const theDefault = await box.start({ env, noConfigFlag: true });
  // box.configPath names its own socket and pid file: a second daemon beside the default one.
  const ours = await startWith(box, box.configPath, env);
  const original = readFileSync(box.configPath, 'utf8');
  /** Both daemons run, each with its first worker, neither stopped nor restarted. */
  const bothUntouched = async (): Promise<void> => {
    const viaDefault = await statusVia(box, [], env);
    const viaSocket = await box.status();
    for (const [s, d] of [[viaDefault, theDefault], [viaSocket, ours]] as const) {
      assert.deepEqual([s.daemon.pid, s.worker.pid, s.worker.state, s.worker.generation], [d.pid, d.workerPid, 'running', 1]);
    }
  };

  writeFileSync(box.configPath, `this is = = not TOML\n${original}`);
  for (const command of [['status'], ['stop'], ['restart-worker'], ['stop-worker'], ['start-worker'], ['logs']]) {
    const r = await box.cli(command, { env });
    const what = `${command.join(' ')}: ${r.stdout}${r.stderr}`;
    assert.equal(r.code, 78, what);
    assert.ok(r.stderr.includes(`${box.configPath}:1:`), what);
    assert.equal(r.stdout, '', what);
  }
  await bothUntouched();

  // It parses, but socket_path is not a path: the file still gives the pid file, which finds ours.
  writeFileSync(box.configPath, original.replace(/^socket_path = .*$/m, 'socket_path = 42'));
  const status = await statusVia(box, ['--config', box.configPath], env);
  assert.equal(status.daemon.pid, ours.pid, 'the daemon of this file, not the one at the default socket');
  const stop = await box.cli(['stop'], { env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, `autopilotd stopped (pid ${ours.pid})\n`);
  assert.ok(isAlive(theDefault.pid) && isAlive(theDefault.workerPid), 'the default daemon was left alone');
  assert.equal((await box.cli(['stop'], { env, noConfigFlag: true })).code, 0);
});
