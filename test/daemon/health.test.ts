// Health checks on a real daemon and real workers (issue #17). Each test waits for the daemon's own
// log events; a test that shows a restart did NOT happen waits for a later event that would have
// come after it (the max_uptime_ms recycle) and then looks at what came before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { daemonInTempDir, isAlive } from '../helpers/daemon.js';
import { statusJson } from '../helpers/memory.js';
import { sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

/** A long backoff after a health restart, so the state stays still while the test looks. */
const HOLD_AFTER_RESTART = '[restart]\ninitial_backoff_ms = 60000\nmax_backoff_ms = 60000\n';

function worker(script: string): string {
  return `[worker]\ncommand = ["sh", "-c", ${JSON.stringify(script)}]\nstop_timeout_ms = 2000\n`;
}

const UNHEALTHY = /worker unhealthy \(/;
const RECYCLED = /worker reached max_uptime_ms: recycling it/;

test('a worker that prints once and then sleeps is restarted (cause health) once stall_timeout_ms passed', async (t) => {
  const box = sandbox(t, {
    body: `${worker('echo started; exec sleep 1000')}${HOLD_AFTER_RESTART}[health]\nstall_timeout_ms = 1500\nstart_grace_ms = 300\n`,
  });
  await box.start();
  const line = await box.waitForLog(/worker unhealthy \(stall\)/, 30_000);
  const silent = Number(/for (\d+) ms \(stall_timeout_ms 1500/.exec(line)?.[1]);
  assert.ok(silent >= 1500, line);
  assert.match(line, /last output \d+ ms ago/, 'its one line of output was seen');
  await box.waitForLog(/restarting worker in 60000 ms cause=health/);
  const status = await box.status();
  assert.equal(status.worker.state, 'backoff');
  assert.equal(status.restarts.health, 1);
  assert.equal(status.restarts.recycle, 0);
  assert.equal(status.worker.consecutive_failures, 1, 'a health restart is a failure');
});

test('a worker that computes silently is not judged stalled: its CPU counts', async (t) => {
  // On a loaded 2-core machine the loop may get a third of a core or less: any tick of CPU in a
  // check (10 ms at 100 Hz) counts here, so only a loop that got none for 3 s would be taken for idle.
  const { daemon } = await daemonInTempDir(t, `${worker('echo started; while :; do :; done')}[health]\nstall_timeout_ms = 3000\nstall_cpu_ms = 5\nmax_uptime_ms = 8000\nstart_grace_ms = 300\n`);
  await daemon.waitForLine(RECYCLED, 60_000);
  assert.deepEqual(daemon.matching(UNHEALTHY), [], 'no health restart before the recycle');
});

test('a worker that keeps printing while stuck is not judged stalled (in the foreground), and its output passes through unchanged', async (t) => {
  // No CPU allowance can count here: only its output keeps it alive.
  const { daemon } = await daemonInTempDir(t, `${worker('while :; do echo "tick  é"; sleep 0.2; done')}[health]\nstall_timeout_ms = 1500\nstall_cpu_ms = 1000000\nmax_uptime_ms = 5000\nstart_grace_ms = 300\n`);
  await daemon.waitForLine(RECYCLED, 60_000);
  assert.deepEqual(daemon.matching(UNHEALTHY), [], 'no health restart before the recycle');
  assert.ok(daemon.stdout.startsWith('tick  é\ntick  é\n'), `the worker's stdout reached the daemon's stdout as it was: ${JSON.stringify(daemon.stdout.slice(0, 80))}`);
});

test('a hanging probe is killed with its process group at its timeout and counted; probe_failures of them restart the worker', async (t) => {
  const probe = 'sleep 1000 & echo $$ $! >> probe-pids; wait';
  const { daemon, dir, configPath } = await daemonInTempDir(t, [
    worker('exec sleep 1000'),
    HOLD_AFTER_RESTART,
    '[health]',
    `probe_command = ["sh", "-c", ${JSON.stringify(probe)}]`,
    'probe_interval_ms = 200',
    'probe_timeout_ms = 500',
    'probe_failures = 2',
    'start_grace_ms = 0',
  ].join('\n'));
  const unhealthy = await daemon.waitForLine(/worker unhealthy \(probe\)/, 30_000);
  assert.match(unhealthy, /2 probes failed in a row \(probe_failures 2; last: timed out after 500 ms\)/);
  assert.equal(daemon.matching(/health probe timed out after 500 ms: SIGKILL to its process group/).length >= 2, true);
  assert.equal(daemon.matching(/health probe failed: timed out after 500 ms .*consecutive_failures=2/).length, 1);
  // Every probe and the child it left asleep are gone.
  const pidFile = join(dir, 'probe-pids');
  assert.ok(existsSync(pidFile), 'the probes ran in working_dir');
  const pids = readFileSync(pidFile, 'utf8').split(/\s+/).filter((w) => w !== '').map(Number);
  assert.ok(pids.length >= 4, `two probes, each with a child: ${pids.join(' ')}`);
  await waitFor(() => `probe processes ${pids.filter(isAlive).join(' ')} to be gone`, () => pids.every((pid) => !isAlive(pid)), 10_000);
  await daemon.waitForLine(/restarting worker in 60000 ms cause=health/);
  const status = await statusJson(configPath);
  assert.equal(status.restarts.health, 1);
  assert.equal(status.worker.consecutive_failures, 1);
});

test('a stale heartbeat file restarts the worker (cause health)', async (t) => {
  const { daemon, dir, configPath } = await daemonInTempDir(t, [
    worker('touch heartbeat; exec sleep 1000'),
    HOLD_AFTER_RESTART,
    '[health]',
    'heartbeat_file = "heartbeat"',
    'heartbeat_timeout_ms = 1500',
    'start_grace_ms = 0',
  ].join('\n'));
  const line = await daemon.waitForLine(/worker unhealthy \(heartbeat\)/, 30_000);
  assert.match(line, /heartbeat file not touched for \d+ ms \(heartbeat_timeout_ms 1500\)/);
  assert.ok(existsSync(join(dir, 'heartbeat')), 'the heartbeat path is resolved against the config file, like every path');
  await daemon.waitForLine(/restarting worker in 60000 ms cause=health/);
  assert.equal((await statusJson(configPath)).restarts.health, 1);
});

test('a heartbeat touched in time keeps the worker running until its recycle', async (t) => {
  const { daemon } = await daemonInTempDir(t, [
    worker('while :; do touch heartbeat; sleep 0.2; done'),
    '[health]',
    'heartbeat_file = "heartbeat"',
    'heartbeat_timeout_ms = 1500',
    'max_uptime_ms = 5000',
    'start_grace_ms = 0',
  ].join('\n'));
  await daemon.waitForLine(RECYCLED, 60_000);
  assert.deepEqual(daemon.matching(UNHEALTHY), []);
});

test('max_uptime_ms recycles a healthy worker at once, counted as recycle and not as a failure', async (t) => {
  // The default start_grace_ms (60 s) does not hold a recycle back: it is planned, not a verdict.
  const { daemon, configPath } = await daemonInTempDir(t, `${worker('exec sleep 1000')}${HOLD_AFTER_RESTART}[health]\nmax_uptime_ms = 1500\n`);
  const line = await daemon.waitForLine(RECYCLED, 30_000);
  assert.match(line, /generation=1 uptime_ms=\d+ max_uptime_ms=1500/);
  // Spawned again without the 60 s backoff a failure would have cost.
  await daemon.waitForLine(/worker spawned generation=2/, 15_000);
  const status = await statusJson(configPath);
  assert.equal(status.worker.state, 'running');
  assert.equal(status.restarts.recycle, 1);
  assert.equal(status.restarts.health, 0);
  assert.equal(status.restarts.crash, 0);
  assert.equal(status.worker.consecutive_failures, 0);
  assert.deepEqual(daemon.matching(/restarting worker in/), []);
});
