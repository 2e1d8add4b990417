// Exactly one daemon and one worker per socket: simultaneous starts race for it, and a daemon
// killed with SIGKILL leaves a worker tree that the next daemon stops before it spawns its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, isAlive, type TreeReport } from '../helpers/daemon.js';
import { argvOf, markedPids, sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const STARTS = 10;

test('ten starts at the same moment leave exactly one daemon and one worker, and nine clear refusals', async (t) => {
  const box = sandbox(t);
  const results = await Promise.all(Array.from({ length: STARTS }, () => box.cli(['start'])));
  box.remember();
  const winners = results.filter((r) => r.code === 0);
  const losers = results.filter((r) => r.code !== 0);
  assert.equal(winners.length, 1, `one start succeeds; outputs:\n${results.map((r) => `${r.code}: ${r.stdout}${r.stderr}`).join('\n')}`);
  for (const r of losers) {
    assert.equal(r.code, 1, r.stderr);
    // Refused either by start's own check of the socket or by the daemon's instance lock.
    assert.match(r.stderr, /^autopilotd: (already running \(pid \d+, socket |autopilotd is already running for socket )/);
  }
  const m = /^autopilotd started: pid (\d+), worker pid (\d+)\n$/.exec(winners[0]!.stdout);
  assert.ok(m, winners[0]!.stdout);
  const pid = Number(m[1]);
  const workerPid = Number(m[2]);
  box.daemonPids.add(pid);

  // The refused daemons exit on their own; then the daemon and its worker are all that is left.
  const left = await waitFor(() => `only the daemon and its worker to remain: ${JSON.stringify(box.processes())}`, () => {
    const ps = box.processes();
    return ps.length === 2 ? ps.map((p) => p.pid).sort((a, b) => a - b) : null;
  });
  assert.deepEqual(left, [pid, workerPid].sort((a, b) => a - b));
  assert.deepEqual(argvOf(workerPid), ['sleep', '1000']);
  assert.deepEqual(markedPids(box.instanceRecord()!.instance_id), [workerPid]);
  assert.equal(readFileSync(box.pidFile, 'utf8'), `${pid}\n`);
  assert.equal(box.log().split('\n').filter((l) => / worker spawned /.test(l)).length, 1, 'one worker was ever spawned');
  const status = await box.status();
  assert.deepEqual([status.daemon.pid, status.worker.pid], [pid, workerPid]);
  assert.equal((await box.cli(['stop'])).code, 0);
});


/** The pid report tree-worker.sh writes once its whole tree is up. */
function treeReport(scratch: string, instanceId: string): Promise<TreeReport> {
  const path = join(scratch, instanceId, 'tree.json');
  return waitFor(`the worker tree report in ${path}`, () => {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    return text.endsWith('}\n') ? (JSON.parse(text) as TreeReport) : null;
  });
}

const pidsOf = (r: TreeReport): number[] => [r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer];

test('after kill -9 of the daemon its worker tree lives on; the next start stops that tree before spawning: never two workers', async (t) => {
  const box = sandbox(t);
  const scratch = join(box.dir, 'scratch');
  mkdirSync(scratch);
  box.writeConfig(`[worker]\ncommand = ["sh", ${JSON.stringify(join(FIXTURES, 'recovery-worker.sh'))}, ${JSON.stringify(scratch)}]\nstop_timeout_ms = 1000\n`);

  const first = await box.start();
  const firstId = box.instanceRecord()!.instance_id;
  const firstTree = await treeReport(scratch, firstId);
  const oldPids = [...new Set([first.workerPid, ...pidsOf(firstTree), ...markedPids(firstId)])];
  assert.ok(oldPids.length >= 26, `the first worker's tree: ${oldPids.join(',')}`);

  process.kill(first.pid, 'SIGKILL');
  await waitFor('the killed daemon to be gone', () => !isAlive(first.pid));
  assert.deepEqual(oldPids.filter((p) => !isAlive(p)), [], 'the worker tree outlived its daemon');
  assert.ok(existsSync(box.socketPath) && existsSync(box.pidFile), 'the killed daemon left its socket and pid file behind');
  assert.equal((await box.cli(['status'])).code, 3, 'a socket nobody listens on means no daemon');
  // The next worker checks at its start that none of these runs any more.
  writeFileSync(join(scratch, 'old-pids'), `${oldPids.join('\n')}\n`);

  const second = await box.start();
  const secondId = box.instanceRecord()!.instance_id;
  assert.notEqual(secondId, firstId);
  assert.deepEqual(oldPids.filter(isAlive), [], 'the old tree, escapees included, is gone');
  assert.deepEqual(markedPids(firstId), []);
  const secondTree = await treeReport(scratch, secondId);
  const overlaps = join(scratch, 'overlaps');
  assert.equal(existsSync(overlaps), false, `the new worker saw old processes alive at its start: ${existsSync(overlaps) ? readFileSync(overlaps, 'utf8') : ''}`);
  const newTree = markedPids(secondId);
  assert.ok(newTree.includes(second.workerPid) && pidsOf(secondTree).every((p) => newTree.includes(p)), 'one new worker tree runs');
  assert.deepEqual(newTree.filter((p) => oldPids.includes(p)), []);
  await box.waitForLog(new RegExp(`worker tree of a previous daemon found; stopping it before starting instance=${firstId} previous_pid=${first.pid} `));
  const status = await box.status();
  assert.deepEqual([status.daemon.pid, status.worker.pid, status.worker.generation], [second.pid, second.workerPid, 1]);

  assert.equal((await box.cli(['stop'])).code, 0);
  assert.deepEqual(markedPids(secondId), []);
});
