// How the daemon ends: after an internal error in its own worker handling (an orderly tree stop,
// then exit 70), and promptly even when a process it could not stop holds the worker's pipes (#15).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, ForegroundDaemon, cleanEnv, daemonInTempDir, isAlive, REPO_ROOT } from '../helpers/daemon.js';
import { argvOf, sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

/** A foreground daemon from test/fixtures/faulty-daemon.mjs that throws in the worker's `where` handling. */
function faultyDaemon(where: 'spawned' | 'exited', generation = 1): (configPath: string) => Promise<ForegroundDaemon> {
  return async (configPath) => {
    const child = spawn(process.execPath, [join(FIXTURES, 'faulty-daemon.mjs'), configPath, where, String(generation)], {
      env: cleanEnv(), cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new ForegroundDaemon(child, configPath);
    child.stdout!.on('data', (c: Buffer) => (daemon.stdout += c.toString('utf8')));
    await daemon.waitForLine(/daemon started/);
    return daemon;
  };
}

// The worker reports its own pid and a child's, so the test can see both go.
const TREE_WORKER = `
[worker]
command = ["sh", "-c", "sleep 1000 & echo tree $$ $!; wait"]
stop_timeout_ms = 2000
`;

async function treeOf(daemon: ForegroundDaemon): Promise<number[]> {
  const line = await waitFor('the worker to report its tree', () => daemon.stdout.split('\n').find((l) => l.startsWith('tree ')));
  return line.split(' ').slice(1).map(Number);
}

test('an exception while handling the worker\'s spawn stops the tree in order and exits 70 (#15)', async (t) => {
  const { daemon, dir } = await daemonInTempDir(t, TREE_WORKER, { start: faultyDaemon('spawned') });
  const pids = await treeOf(daemon);
  const exit = await daemon.exited;
  assert.deepEqual(exit, { code: 70, signal: null }, daemon.lines.join('\n'));
  assert.ok(daemon.matching(/internal error: Error: injected fault in the spawned handling/).length === 1);
  assert.ok(daemon.matching(/SIGTERM sent to the worker tree/).length >= 1, 'the tree was stopped in order');
  assert.deepEqual(pids.filter(isAlive), [], 'no process of the tree survives');
  assert.equal(daemon.matching(/can't happen/).length, 0, daemon.lines.join('\n'));
  await daemon.waitForLine(/daemon stopped/);
  assert.equal(existsSync(join(dir, 'd.pid')), false, 'pid file removed');
  assert.equal(existsSync(join(dir, 'd.sock')), false, 'socket removed');
});

test('an exception while handling the worker\'s exit stops the rest of its tree and exits 70 (#15)', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "sleep 1000 & echo tree $$ $!; exit 3"]
stop_timeout_ms = 2000
[restart]
initial_backoff_ms = 60000
`, { start: faultyDaemon('exited') });
  const [, child] = await treeOf(daemon);
  const exit = await daemon.exited;
  assert.deepEqual(exit, { code: 70, signal: null }, daemon.lines.join('\n'));
  assert.ok(daemon.matching(/internal error: Error: injected fault in the exited handling/).length === 1);
  assert.equal(isAlive(child!), false, 'the worker\'s child was stopped with the tree');
  assert.equal(daemon.matching(/worker spawned generation=2/).length, 0, 'no restart after the internal error');
  assert.equal(daemon.matching(/can't happen/).length, 0, daemon.lines.join('\n'));
});

test('an exception in the second generation\'s spawn, armed by the backoff timer, also ends in exit 70 (#15)', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "echo gen $AUTOPILOTD_GENERATION; [ $AUTOPILOTD_GENERATION = 1 ] && exit 1; exec sleep 1000"]
stop_timeout_ms = 2000
[restart]
initial_backoff_ms = 50
`, { start: faultyDaemon('spawned', 2) });
  const exit = await daemon.exited;
  assert.deepEqual(exit, { code: 70, signal: null }, daemon.lines.join('\n'));
  assert.equal(daemon.matching(/worker spawned generation=2 /).length, 1);
  assert.ok(daemon.matching(/worker stopped with signal SIGTERM generation=2 /).length === 1, daemon.lines.join('\n'));
});

/** The escapee's uid: the tree stop never signals another user's process, so it survives for sure. */
const NOBODY = 65534;

/** Processes of `uid` running exactly `sleep 100007`. */
function escapees(uid: number): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    const argv = argvOf(pid);
    if (argv.length !== 2 || argv[0] !== 'sleep' || argv[1] !== '100007') return false;
    try {
      return readFileSyncUid(pid) === uid;
    } catch {
      return false;
    }
  });
}

function readFileSyncUid(pid: number): number {
  return statSync(`/proc/${pid}`).uid;
}

test('an escapee holding the worker\'s stdout and stderr does not keep the daemon alive after stop (#15)', { skip: process.getuid!() !== 0 && 'needs root to leave an escapee of another uid' }, async (t) => {
  const before = new Set(escapees(NOBODY));
  let escapee: number | null = null;
  t.after(() => {
    if (escapee !== null && isAlive(escapee)) process.kill(escapee, 'SIGKILL');
  });
  // It leaves the session and becomes another user, so no tree stop signals it (never another
  // uid's process), and it holds the write ends of the worker's output pipes.
  const box = sandbox(t, { body: `[worker]\ncommand = ["sh", "-c", "( setsid setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups sleep 100007 & ); exec sleep 1000"]\nstop_timeout_ms = 2000\n` });
  const { pid } = await box.start();
  escapee = await waitFor('the escapee to run', () => escapees(NOBODY).find((p) => !before.has(p)));
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  await waitFor(`the daemon ${pid} to exit`, () => !isAlive(pid));
  assert.ok(isAlive(escapee), `the escapee ${escapee} lives on: the daemon exited without waiting for it\n${box.log()}`);
  process.kill(escapee, 'SIGKILL');
});
