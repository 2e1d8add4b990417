// `npm run demo` as a newcomer runs it: within seconds the log shows a spawn, a crash, the backoff
// delay and the restart, then the memory guard restarting a tree whose helper leaks (cause=memory,
// ~15 s in on a quiet machine); Ctrl-C stops everything and leaves no process behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, ForegroundDaemon, isAlive, killMarked, REPO_ROOT } from '../helpers/daemon.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { findTree } from '../../src/os/process-tree.js';
import { waitFor } from '../helpers/wait.js';

test('npm run demo shows spawn, crash, backoff and restart, then a memory restart, and Ctrl-C leaves nothing behind', async (t) => {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const prefix = 'npm run build && ';
  assert.ok(scripts.demo!.startsWith(prefix), 'the demo builds first, then runs the daemon');
  // Run what the script runs after its build (the suite has built already; building again here would
  // rewrite dist/ under the other tests' feet). `exec` so that SIGINT reaches the daemon itself.
  const child = spawn('sh', ['-c', `exec ${scripts.demo!.slice(prefix.length)}`], { cwd: REPO_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const daemon = new ForegroundDaemon(child, join(REPO_ROOT, 'demo/daemon.toml'));
  child.stdout.on('data', (c: Buffer) => (daemon.stdout += c.toString('utf8')));
  t.after(() => daemon.cleanup());

  await daemon.waitForLine(/worker spawned generation=1 /, 20_000);
  await daemon.waitForLine(/worker exited with code 1 generation=1/, 20_000);
  await daemon.waitForLine(/restarting worker in 1000 ms cause=crash consecutive_failures=1/, 20_000);
  await daemon.waitForLine(/worker spawned generation=2 /, 20_000);
  assert.match(daemon.stdout, /agent gen 1: task 1 done/, 'the worker output passes through');

  const identity = { root: null, pgid: null, instanceId: daemon.instanceId!, uid: process.getuid!(), protectedPids: new Set([process.pid]) };
  // The worker prints its "started" line once its helper process has been spawned.
  await waitFor('generation 2 to start its helper', () => daemon.stdout.includes('agent gen 2: started'));
  const tree = findTree(new ProcTable(), identity).map((p) => p.pid);
  assert.ok(tree.length >= 2, `the worker and its helper run (found ${tree.join(',')})`);

  // Generation 3 does not crash: its tree (worker and leaking helper) passes worker_max_bytes.
  await daemon.waitForLine(/memory tree_limit: restarting the worker .*limit=200\.0MiB/, 90_000);
  await daemon.waitForLine(/restarting worker in \d+ ms cause=memory /, 30_000);

  child.kill('SIGINT');
  const exit = await daemon.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(tree.filter(isAlive), [], 'no process of the tree is left');
  assert.deepEqual(killMarked(daemon.instanceId), [], 'nothing carries the demo instance marker');
  assert.equal(existsSync(join(REPO_ROOT, 'demo/.run/autopilotd.sock')), false);
  assert.equal(existsSync(join(REPO_ROOT, 'demo/.run/autopilotd.pid')), false);
});
