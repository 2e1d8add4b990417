// The daemon's life through the CLI: `start` daemonizes and returns once the worker runs, `status`
// reports it, `stop` returns only once daemon and worker tree are gone; how every command finds the
// daemon; how `start` and `stop` fail.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StatusData } from '../../src/control/protocol.js';
import { VERSION } from '../../src/version.js';
import { CLI, cleanEnv, isAlive } from '../helpers/daemon.js';
import { SLEEP_WORKER, markedPids, sandbox, type Sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const toml = (value: unknown): string => JSON.stringify(value);

/** Session id of a process (field 6 of /proc/<pid>/stat). */
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

const keys = (o: object | null): string[] => Object.keys(o ?? {}).sort();

test('start daemonizes and returns once the worker runs; status reports it; stop returns once everything is gone', async (t) => {
  // The worker takes 0.5 s to exit on SIGTERM, so `stop` returning early would be seen. One process
  // (tree-stop would SIGTERM a helper started by a shell trap as well).
  const script = [
    "process.on('SIGTERM', () => setTimeout(() => process.exit(0), 500));",
    "console.log('worker out ' + process.env.AUTOPILOTD_GENERATION); console.error('worker err');",
    'setInterval(() => {}, 1e6);',
  ].join(' ');
  const argv = [process.execPath, '-e', script];
  const box = sandbox(t, { body: `[worker]\ncommand = ${toml(argv)}\nstop_timeout_ms = 3000\n` });

  const { pid, workerPid } = await box.start();
  assert.ok(isAlive(pid) && isAlive(workerPid), 'daemon and worker run when start returns');
  assert.equal(sessionOf(pid), pid, 'the daemon leads its own session: detached from the terminal of start');
  assert.equal(readFileSync(box.pidFile, 'utf8'), `${pid}\n`);
  const record = box.instanceRecord()!;
  assert.equal(record.pid, pid);
  assert.deepEqual([record.socket_path, record.config_path], [box.socketPath, box.configPath], 'the instance record says where the daemon listens and what it read');
  assert.deepEqual(markedPids(record.instance_id).includes(workerPid), true, 'the worker carries the instance marker');

  // Files: the socket directory did not exist and was created private; the socket is 0600.
  assert.equal(statSync(join(box.dir, 'run')).mode & 0o777, 0o700);
  const socket = statSync(box.socketPath);
  assert.ok(socket.isSocket());
  assert.equal(socket.mode & 0o777, 0o600);
  assert.equal(statSync(box.logPath).mode & 0o777, 0o600);

  const human = await box.cli(['status']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`^autopilotd ${VERSION}: running, pid ${pid}, up `));
  assert.match(human.stdout, new RegExp(`\\n  config: +${box.configPath}\\n`));
  assert.match(human.stdout, new RegExp(`\\n  worker: +running, pid ${workerPid}, generation 1, up `));
  assert.match(human.stdout, /\n {2}restarts: +0 \(crash 0, oom 0, memory 0, operator 0, health 0, hold 0, recycle 0\); consecutive failures 0\n/);
  // Root on a writable cgroup v2 (this machine): the default mode "auto" takes the cgroup backend.
  assert.match(human.stdout, /\n {2}tree: +(cgroup \/\S+\/worker-1|proc \(.*\))\n/);

  // The first memory sample may still be on its way when the worker has just started.
  const status = await waitFor('a status with a memory sample', async () => {
    const r = await box.cli(['status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as StatusData;
    return s.memory === null ? null : s;
  });
  // `running` is the CLI's (no daemon: {"running": false, ...}); the rest is the protocol's reply.
  assert.deepEqual(keys(status), ['daemon', 'memory', 'memory_limits', 'restarts', 'running', 'tree', 'worker']);
  assert.deepEqual(keys(status.tree ?? null), ['backend', 'cgroup', 'leaf', 'processes', 'processes_left_out']);
  assert.deepEqual(keys(status.memory_limits ?? null), ['critical_threshold_bytes', 'min_available_bytes', 'node_kill_threshold_bytes', 'psi_some_avg10', 'worker_max_bytes']);
  assert.deepEqual(keys(status.worker.backoff ?? null), ['backoff_multiplier', 'initial_backoff_ms', 'max_backoff_ms', 'max_consecutive_restarts', 'stable_after_ms']);
  assert.deepEqual(keys(status.daemon), ['config_path', 'log_target', 'native', 'pid', 'started_at', 'uptime_ms', 'version']);
  assert.deepEqual(keys(status.worker), [
    'backoff', 'command', 'consecutive_failures', 'generation', 'last_exit', 'last_spawn_error', 'next_restart_at', 'pid', 'restart', 'started_at', 'state', 'stop_timeout_ms', 'uptime_ms', 'working_dir',
  ]);
  // The worker main, read from the real /proc: its parent is the daemon, its command line the argv.
  assert.deepEqual(status.tree?.processes?.map((p) => [p.pid, p.ppid, p.command]), [[workerPid, pid, argv]]);
  assert.ok(status.tree!.processes![0]!.rss_bytes > 0);
  assert.equal(status.tree?.processes_left_out, 0);
  assert.deepEqual(keys(status.restarts), ['crash', 'health', 'hold', 'memory', 'oom', 'operator', 'recycle', 'total']);
  assert.deepEqual(keys(status.memory), ['available_bytes', 'last_action', 'level', 'psi', 'top', 'tree_processes', 'tree_rss_bytes', 'tree_swap_bytes']);
  assert.equal(status.daemon.pid, pid);
  assert.equal(status.daemon.version, VERSION);
  assert.equal(status.daemon.config_path, box.configPath);
  assert.equal(status.daemon.log_target, box.logPath, 'a detached daemon logs to its log file');
  assert.deepEqual(status.daemon.native, { loaded: true, reason: null }, 'npm install built the native helper');
  assert.ok(status.daemon.uptime_ms >= 0 && !Number.isNaN(Date.parse(status.daemon.started_at)));
  const { backoff: _backoff, working_dir: workingDir, ...worker } = status.worker;
  assert.equal(workingDir, box.dir);
  assert.deepEqual(
    { ...worker, started_at: null, uptime_ms: null },
    { state: 'running', pid: workerPid, generation: 1, started_at: null, uptime_ms: null, command: argv, consecutive_failures: 0, next_restart_at: null, last_exit: null, restart: 'always', last_spawn_error: null, stop_timeout_ms: 3000 },
  );
  const listed = await box.cli(['status']);
  assert.match(listed.stdout, new RegExp(`\\n  log: +${box.logPath}\\n  workdir: +${box.dir}\\n  restart: +always; backoff `));
  assert.match(listed.stdout, new RegExp(`\\n  processes:\\n +${workerPid} +[\\d.]+ [KM]iB  ${process.execPath} -e `));
  assert.deepEqual(status.restarts, { total: 0, crash: 0, oom: 0, memory: 0, operator: 0, health: 0, hold: 0, recycle: 0 });

  // Background mode: daemon events and the worker's stdout and stderr all go to the log file.
  await box.waitForLog(/ INFO {2}worker\[1\] worker out 1$/);
  await box.waitForLog(/ INFO {2}worker\[1,stderr\] worker err$/);
  assert.match(box.log(), new RegExp(`daemon started pid=${pid} `));

  const again = await box.cli(['start']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, new RegExp(`^autopilotd: already running \\(pid ${pid}, socket ${box.socketPath}\\)\\n$`));
  assert.deepEqual(box.daemons(), [pid], 'still one daemon');
  assert.equal((await box.status()).worker.pid, workerPid, 'the worker was not touched');

  const began = Date.now();
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, `autopilotd stopped (pid ${pid})\n`);
  assert.ok(Date.now() - began >= 450, 'stop waited for the worker to finish its SIGTERM handler');
  assert.equal(isAlive(pid), false, 'the daemon has exited when stop returns');
  assert.deepEqual(markedPids(record.instance_id), [], 'the worker tree is gone when stop returns');
  for (const path of [box.pidFile, `${box.pidFile}.instance`, box.socketPath]) assert.equal(existsSync(path), false, `${path} removed`);
  await box.waitForLog(/daemon stopped/);
});

test('with no daemon: status exits 3, stop exits 0, and the worker commands exit 3', async (t) => {
  const box = sandbox(t);
  const status = await box.cli(['status']);
  assert.equal(status.code, 3);
  assert.equal(status.stderr, `autopilotd is not running (no daemon at ${box.socketPath})\n`);
  assert.equal((await box.cli(['status', '--json'])).code, 3);
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0);
  assert.equal(stop.stdout, 'autopilotd is not running; nothing to stop\n');
  for (const cmd of ['restart-worker', 'stop-worker', 'start-worker', 'reload']) {
    const r = await box.cli([cmd]);
    assert.equal(r.code, 3, `${cmd}: ${r.stderr}`);
    assert.match(r.stderr, /is not running/);
  }
});

test('every command finds the daemon through AUTOPILOTD_CONFIG and environment overrides, as the daemon did', async (t) => {
  const box = sandbox(t);
  const altSocket = join(box.dir, 'alt', 'alt.sock');
  const env = { AUTOPILOTD_CONFIG: box.configPath, AUTOPILOTD_SOCKET_PATH: altSocket };
  const { pid } = await box.start({ env, noConfigFlag: true });
  assert.ok(statSync(altSocket).isSocket(), 'the daemon listens where the environment said');
  assert.equal(existsSync(box.socketPath), false);

  const viaEnv = await box.cli(['status', '--json'], { env, noConfigFlag: true });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  const status = JSON.parse(viaEnv.stdout) as StatusData;
  assert.equal(status.daemon.pid, pid);
  assert.equal(status.daemon.config_path, box.configPath);
  // The file alone names another socket, where no daemon listens; the pid file it shares with the
  // daemon still finds it, and the CLI says where it listens (issue #14).
  const viaFile = await box.cli(['status']);
  assert.equal(viaFile.code, 0, viaFile.stderr);
  assert.equal(viaFile.stderr, `autopilotd: the daemon (pid ${pid}) listens at ${altSocket}; the configuration now says ${box.socketPath} (restart the daemon to move it)\n`);
  const elsewhere = await box.cli(['status'], { env: { AUTOPILOTD_PID_FILE: join(box.dir, 'other.pid') } });
  assert.equal(elsewhere.code, 3, 'a configuration naming neither its socket nor its pid file finds no daemon');
  assert.match(elsewhere.stderr, new RegExp(`no daemon at ${box.socketPath}`));
  // The flag wins over AUTOPILOTD_CONFIG, and env overrides still apply on top of the flag's file.
  const flagAndEnv = await box.cli(['status'], { env: { AUTOPILOTD_CONFIG: join(box.dir, 'missing.toml'), AUTOPILOTD_SOCKET_PATH: altSocket } });
  assert.equal(flagAndEnv.code, 0, flagAndEnv.stderr);

  const restart = await box.cli(['restart-worker'], { env, noConfigFlag: true });
  assert.equal(restart.code, 0, restart.stderr);
  const stop = await box.cli(['stop'], { env, noConfigFlag: true });
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(isAlive(pid), false);
});

test('global options before the command word start a daemon as after it: the one status then finds', async (t) => {
  // The detached daemon's argv was rebuilt from process.argv as if `start` were its first word:
  // `--config P start` gave it `--config --foreground --daemonized P start`, and it never started.
  // The instance's file sets no paths: only a daemon that got --instance listens where status looks.
  const cases = [
    { name: '--config P start', lead: (box: Sandbox) => ['--config', box.configPath] },
    { name: '--instance web start', lead: () => ['--instance', 'web'] },
  ];
  for (const c of cases) {
    const box = sandbox(t);
    const env = { HOME: box.dir };
    mkdirSync(join(box.dir, '.autopilot'), { mode: 0o700 });
    writeFileSync(join(box.dir, '.autopilot', 'web.toml'), `working_dir = ${toml(box.dir)}\n${SLEEP_WORKER}`);
    const r = await box.cli([...c.lead(box), 'start'], { noConfigFlag: true, env, timeoutMs: 20_000 });
    box.remember();
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}\nlog:\n${box.log()}`);
    const m = /^autopilotd started: pid (\d+), worker pid \d+\n$/.exec(r.stdout);
    assert.ok(m, `${c.name}: ${JSON.stringify(r.stdout)}`);
    const status = await box.cli([...c.lead(box), 'status', '--json'], { noConfigFlag: true, env });
    assert.equal(status.code, 0, `${c.name}: ${status.stderr}`);
    const data = JSON.parse(status.stdout) as StatusData;
    assert.equal(data.daemon.pid, Number(m[1]), c.name);
    assert.equal(data.worker.state, 'running', c.name);
    const stop = await box.cli([...c.lead(box), 'stop'], { noConfigFlag: true, env });
    assert.equal(stop.code, 0, `${c.name}: ${stop.stderr}`);
    assert.equal(isAlive(Number(m[1])), false, c.name);
  }
});

test('start fails with exit 1 and the last log lines when the daemon cannot start, without waiting for a timeout', async (t) => {
  const box = sandbox(t);
  // A user's file where the socket goes: only the daemon finds out, when it would bind there, and
  // it keeps the file rather than replacing it.
  mkdirSync(dirname(box.socketPath), { mode: 0o700 });
  writeFileSync(box.socketPath, 'not a socket\n');
  const began = Date.now();
  const r = await box.cli(['start']);
  assert.equal(r.code, 1);
  assert.match(r.stderr.split('\n')[0]!, /^autopilotd: .*\/d\.sock exists and is not a socket .*refusing to replace it$/);
  assert.equal(readFileSync(box.socketPath, 'utf8'), 'not a socket\n');
  assert.match(r.stderr, new RegExp(`last log lines from ${box.logPath}:\\n  .* INFO  daemon started pid=\\d+ `));
  assert.ok(Date.now() - began < 10_000, 'the failure was reported at once, not after the startup timeout');
  await waitFor(() => `the failed daemon to exit: ${JSON.stringify(box.processes())}`, () => box.processes().length === 0);
  assert.doesNotMatch(box.log(), /worker spawned/);
});

test('start exits 1 when the worker cannot be spawned, naming why; the daemon stays and retries', async (t) => {
  // A missing working_dir: it may appear later (a mount), so the daemon runs and retries (#15).
  // A command that does not resolve is refused before anything starts (start-errors.test.ts).
  const box = sandbox(t, { body: '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n[restart]\ninitial_backoff_ms = 60000\n' });
  writeFileSync(box.configPath, readFileSync(box.configPath, 'utf8').replace(/^working_dir = .*$/m, `working_dir = ${toml(join(box.dir, 'not-yet'))}`));
  const r = await box.cli(['start']);
  box.remember();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^autopilotd: warning: .*working_dir: .*not-yet is not usable \(ENOENT\)/);
  assert.match(r.stderr, /\nautopilotd: daemon started \(pid (\d+)\) but the worker did not: it is backoff and will be retried\.\n/);
  assert.match(r.stderr, /worker spawn failed: working_dir .*\/not-yet is not usable/);
  const status = await box.status();
  assert.equal(status.worker.state, 'backoff');
  assert.equal(status.worker.pid, null);
  assert.equal(status.worker.consecutive_failures, 1);
  assert.ok(status.worker.next_restart_at !== null && Date.parse(status.worker.next_restart_at) > Date.now() + 30_000);
  // The reason stays in status, not only in the log.
  assert.match(status.worker.last_spawn_error?.message ?? '', /^working_dir .*\/not-yet is not usable/);
  assert.ok(Date.now() - Date.parse(status.worker.last_spawn_error!.at) < 60_000);
  const human = await box.cli(['status']);
  assert.match(human.stdout, /\n  last spawn error: working_dir .*\/not-yet is not usable.*, [\d.]+s ago\n/);
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
});

test('stop --timeout gives up with exit 1 while the worker outlives it; the daemon still completes its shutdown', async (t) => {
  // `sleep` inherits the ignored SIGTERM: only the SIGKILL after stop_timeout_ms ends it.
  const box = sandbox(t, { body: '[worker]\ncommand = ["sh", "-c", "trap \\"\\" TERM; exec sleep 1000"]\nstop_timeout_ms = 3000\n' });
  const { pid, workerPid } = await box.start();
  const began = Date.now();
  const r = await box.cli(['stop', '--timeout', '300ms']);
  const tookMs = Date.now() - began;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^autopilotd: stop failed: no reply to shutdown from .* within 300 ms \(timeout\); the daemon carries on stopping \(autopilotd status shows it; a second .autopilotd stop. kills the worker tree at once\)\n$/);
  assert.ok(tookMs < 2700, `stop gave up after ${tookMs} ms, before the worker's 3 s grace ran out`);
  assert.ok(isAlive(workerPid), 'the worker still runs: its grace is not over');
  await waitFor('the daemon to finish its shutdown', () => !isAlive(pid) && !isAlive(workerPid), 15_000);
  assert.equal(existsSync(box.pidFile), false);
  await box.waitForLog(/worker tree gone/);
});

test('start with a worker argv after -- daemonizes once and runs exactly that argv', async (t) => {
  const box = sandbox(t);
  const argv = ['sh', '-c', 'echo argv-after-dashdash; exec sleep 1000'];
  // --config before --: everything after -- belongs to the worker.
  const r = await box.cli(['start', '--config', box.configPath, '--', ...argv], { noConfigFlag: true, timeoutMs: 20_000 });
  box.remember();
  assert.equal(r.code, 0, `${r.stderr}\nlog:\n${box.log()}`);
  assert.equal(box.daemons().length, 1, `exactly one daemon: ${JSON.stringify(box.processes())}`);
  const status = await box.status();
  assert.deepEqual(status.worker.command, argv);
  assert.equal(status.worker.state, 'running');
  await box.waitForLog(/ worker\[1\] argv-after-dashdash$/);
});

test('a worker descendant that gets the pid of the exited start CLI is still stopped with the tree', async (t) => {
  if (process.getuid!() !== 0) return t.skip('steering the next pid (ns_last_pid) needs root');
  // The worker forks one `sleep` per line written to its fifo, and forks nothing in between, so the
  // test can steer the pid of that next fork.
  const box = sandbox(t, { body: `[worker]\ncommand = ["sh", "-c", "mkfifo go; while read x < go; do sleep 1000 & echo $! >> kids; done"]\nstop_timeout_ms = 2000\n` });
  const cli = spawn(process.execPath, [CLI, 'start', '--config', box.configPath], { env: { ...cleanEnv(), ...box.env() }, stdio: 'ignore' });
  const cliPid = cli.pid!;
  const [code] = (await once(cli, 'exit')) as [number | null];
  box.remember();
  assert.equal(code, 0, box.log());
  const workDir = box.dir; // working_dir: the worker's cwd, where it makes `go` and `kids`
  await waitFor('the worker to make its fifo', () => existsSync(join(workDir, 'go')));
  let kid = 0;
  for (let attempt = 0; attempt < 50 && kid !== cliPid; attempt++) {
    // Counted before the write: the worker may fork and record the kid before writeFileSync returns.
    const before = existsSync(join(workDir, 'kids')) ? readFileSync(join(workDir, 'kids'), 'utf8').trim().split('\n').length : 0;
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(cliPid - 1));
    writeFileSync(join(workDir, 'go'), 'fork\n');
    const kids = await waitFor('the worker to fork', () => {
      const lines = existsSync(join(workDir, 'kids')) ? readFileSync(join(workDir, 'kids'), 'utf8').trim().split('\n') : [];
      return lines.length > before ? lines : null;
    });
    kid = Number(kids.at(-1));
  }
  if (kid !== cliPid) return t.skip(`could not get pid ${cliPid} for a worker descendant`);
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(isAlive(kid), false, `the descendant with the old CLI pid ${kid} was stopped with the tree`);
});
