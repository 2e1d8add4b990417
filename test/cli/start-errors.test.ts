// How `start` fails (issue #15, item 4): a daemon that never reports is stopped, not left behind;
// a failure quotes only this start's log lines; mistakes that only showed when the daemon ran are
// configuration errors (exit 78) from `start` and `config check` alike.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { START_TIMEOUT_ENV } from '../../src/cli/start-timeout.js';
import { cleanEnv, isAlive } from '../helpers/daemon.js';
import { sandbox, type Sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

/**
 * What a daemon killed with SIGKILL leaves: its instance record, and a worker tree carrying its
 * marker, here one that ignores SIGTERM. The next daemon stops that tree before it reports, taking
 * worker.stop_timeout_ms: long enough to outlast any wait of `start`.
 */
async function plantTermIgnoringOrphan(box: Sandbox): Promise<{ orphanPid: number; instanceId: string }> {
  const instanceId = 'orphan-of-a-killed-daemon';
  const orphan = spawn('sh', ['-c', 'trap "" TERM; echo ready; exec sleep 1000'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...cleanEnv(), AUTOPILOTD_INSTANCE: instanceId, ...box.env() },
  });
  await once(orphan.stdout!, 'data'); // the trap is set
  orphan.unref();
  const record = { pid: await deadPid(), instance_id: instanceId, started_at: new Date().toISOString(), socket_path: box.socketPath, config_path: box.configPath, start_ticks: null };
  writeFileSync(`${box.pidFile}.instance`, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  return { orphanPid: orphan.pid!, instanceId };
}

test('issue #15: start stops a daemon that does not report in time, by pid, and quotes only its own log lines', async (t) => {
  const box = sandbox(t, { body: '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 20000\n' });
  // An earlier run's lines in the log: they must not be quoted as this start's.
  mkdirSync(box.logDir, { mode: 0o700 });
  writeFileSync(box.logPath, '2020-01-01T00:00:00.000Z INFO  daemon started pid=1 version=0 instance=earlier-run\n2020-01-01T00:00:01.000Z ERROR earlier-run failed\n', { mode: 0o600 });
  const { orphanPid } = await plantTermIgnoringOrphan(box);

  const r = await box.cli(['start'], { env: { [START_TIMEOUT_ENV]: '1500' }, timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stderr);
  const m = /^autopilotd: the daemon did not report within 1\.5 s; stopped it \(pid (\d+)\)\nlast log lines from (\S+):\n/.exec(r.stderr);
  assert.ok(m, r.stderr);
  const pid = Number(m[1]);
  box.daemonPids.add(pid);
  assert.equal(m[2], box.logPath);
  assert.match(r.stderr, new RegExp(`\\n  \\S+ INFO  daemon started pid=${pid} `), 'its own lines are quoted');
  assert.match(r.stderr, /worker tree of a previous daemon found/, 'up to where it hung');
  assert.doesNotMatch(r.stderr, /earlier-run/, "an earlier run's lines are not");
  assert.equal(isAlive(pid), false, 'the daemon is gone when start returns');
  assert.deepEqual(box.daemons(), [], 'no daemon of this sandbox runs');
  assert.doesNotMatch(box.log(), /worker spawned/, 'it spawned no worker');
  assert.ok(isAlive(orphanPid), 'the orphan it was stopping is none of start\'s business (the next start stops it)');
});

test('issue #15: a failed start quotes the lines its daemon wrote, not those of earlier runs', async (t) => {
  const box = sandbox(t);
  mkdirSync(box.logDir, { mode: 0o700 });
  writeFileSync(box.logPath, '2020-01-01T00:00:00.000Z ERROR earlier-run line\n', { mode: 0o600 });
  // A user's file where the socket goes: the daemon finds out when it would bind there.
  mkdirSync(join(box.dir, 'run'), { mode: 0o700 });
  writeFileSync(box.socketPath, 'not a socket\n');
  const r = await box.cli(['start']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /exists and is not a socket/);
  assert.match(r.stderr, /\n {2}\S+ INFO {2}daemon started pid=\d+ /);
  assert.doesNotMatch(r.stderr, /earlier-run/);
  await waitFor(() => `the failed daemon to exit: ${JSON.stringify(box.processes())}`, () => box.processes().length === 0);
});

/** Both commands refuse the configuration with exit 78 and the same problem line; nothing starts. */
async function assertRefused(box: Sandbox, problem: RegExp): Promise<void> {
  for (const args of [['config', 'check'], ['start'], ['start', '--foreground']]) {
    const r = await box.cli(args);
    assert.equal(r.code, 78, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^autopilotd: invalid configuration:\n/, args.join(' '));
    assert.match(r.stderr, problem, args.join(' '));
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `${args.join(' ')}: no stack trace`);
  }
  assert.deepEqual(box.daemons(), [], 'no daemon was started');
  assert.equal(box.instanceRecord(), null);
  assert.equal(existsSync(box.pidFile), false, 'no pid file was written');
}

/** Rewrites the sandbox's config with `lines` (TOML); returns the 1-based line of `key`. */
function writeLines(box: Sandbox, lines: string[], key: string): number {
  writeFileSync(box.configPath, `${lines.join('\n')}\n`);
  return lines.findIndex((l) => l.startsWith(`${key} =`)) + 1;
}

const q = JSON.stringify;

test('issue #15: pid_file equal to socket_path: exit 78 from config check and start, at the line of pid_file', async (t) => {
  const box = sandbox(t);
  const at = writeLines(box, [`working_dir = ${q(box.dir)}`, `socket_path = ${q(box.socketPath)}`, `pid_file = ${q(box.socketPath)}`, ...SLEEP], 'pid_file');
  await assertRefused(box, new RegExp(`\n${esc(box.configPath)}:${at}:1: pid_file: "${esc(box.socketPath)}" clashes with socket_path .*both would use ${esc(box.socketPath)}; give pid_file a path of its own\n$`));
});

test("issue #15: a socket_path whose temporary bind name is too long for sun_path: exit 78, not the daemon's failure", async (t) => {
  const box = sandbox(t);
  const socketPath = join(box.dir, 'd'.repeat(97 - box.dir.length - 1), 's.sock');
  assert.ok(Buffer.byteLength(socketPath) <= 107);
  const at = writeLines(box, [`working_dir = ${q(box.dir)}`, `socket_path = ${q(socketPath)}`, `pid_file = ${q(box.pidFile)}`, ...SLEEP], 'socket_path');
  // Fits: the directory is 97 bytes, the temporary name 107.
  const fits = await box.cli(['config', 'check']);
  assert.equal(fits.code, 0, fits.stderr);
  const tooLong = join(box.dir, 'd'.repeat(98 - box.dir.length - 1), 's.sock');
  writeLines(box, [`working_dir = ${q(box.dir)}`, `socket_path = ${q(tooLong)}`, `pid_file = ${q(box.pidFile)}`, ...SLEEP], 'socket_path');
  await assertRefused(box, new RegExp(`\n${esc(box.configPath)}:${at}:1: socket_path: expected a path of at most 107 bytes once resolved, in a directory of at most 97 bytes .*\\(its directory is 98 bytes\\)`));
});

for (const key of ['pid_file', 'logs.dir'] as const) {
  test(`issue #15: ${key} under a regular file: exit 78 from config check and start naming ${key}`, async (t) => {
    const box = sandbox(t);
    const plain = join(box.dir, 'plain');
    writeFileSync(plain, 'a file\n');
    const pidFile = key === 'pid_file' ? join(plain, 'sub', 'd.pid') : box.pidFile;
    const logDir = key === 'logs.dir' ? join(plain, 'logs') : box.logDir;
    const lines = [`working_dir = ${q(box.dir)}`, `socket_path = ${q(box.socketPath)}`, `pid_file = ${q(pidFile)}`, ...SLEEP, '[logs]', `dir = ${q(logDir)}`];
    const at = key === 'pid_file' ? writeLines(box, lines, 'pid_file') : writeLines(box, lines, 'dir');
    await assertRefused(box, new RegExp(`\n${esc(box.configPath)}:${at}:1: ${esc(key)}: unsafe .*under ${esc(plain)}, which is not a directory`));
  });
}

test('issue #15: a worker command that does not resolve: exit 78 from config check and start, at the line of worker.command', async (t) => {
  const box = sandbox(t);
  const at = writeLines(box, [`working_dir = ${q(box.dir)}`, `socket_path = ${q(box.socketPath)}`, `pid_file = ${q(box.pidFile)}`, '[worker]', 'command = ["autopilotd-test-no-such-program", "run"]'], 'command');
  await assertRefused(box, new RegExp(`\n${esc(box.configPath)}:${at}:1: worker\\.command: command not found: autopilotd-test-no-such-program \\(searched PATH=.*\\); install it, give its absolute path, or set worker\\.env\\.PATH\n$`));
  // The same from a worker argv after --, named as that flag.
  const r = await box.cli(['start', '--config', box.configPath, '--', '/nonexistent/agent'], { noConfigFlag: true });
  assert.equal(r.code, 78, r.stderr);
  assert.match(r.stderr, /\nflag -- <worker argv>: worker\.command: command not found: \/nonexistent\/agent .*; fix the path\n$/);
  assert.deepEqual(box.daemons(), []);
});

test('issue #15: a missing working_dir is a warning; the daemon starts and retries the worker until the directory exists', async (t) => {
  const box = sandbox(t, { body: '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n[restart]\ninitial_backoff_ms = 200\nmax_backoff_ms = 400\n' });
  const workDir = join(box.dir, 'later');
  const text = readFileSync(box.configPath, 'utf8').replace(/^working_dir = .*$/m, `working_dir = ${q(workDir)}`);
  writeFileSync(box.configPath, text);
  const warning = new RegExp(`^autopilotd: warning: ${esc(box.configPath)}:1:1: working_dir: working_dir ${esc(workDir)} is not usable \\(ENOENT\\); the daemon starts anyway and retries the worker with backoff until it is\n`);
  const check = await box.cli(['config', 'check']);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stderr, warning);
  assert.match(check.stdout, /^configuration is valid/);

  const r = await box.cli(['start']);
  box.remember();
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, warning);
  assert.match(r.stderr, /autopilotd: daemon started \(pid \d+\) but the worker did not: it is backoff and will be retried\.\n/);
  mkdirSync(workDir);
  await box.waitForLog(/worker spawned/);
  const status = await box.status();
  assert.equal(status.worker.state, 'running');
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
});

const SLEEP = ['[worker]', 'command = ["sleep", "1000"]', 'stop_timeout_ms = 2000'];

function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
