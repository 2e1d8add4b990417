// The worker tree as the daemon's own descendants (issue #18): the daemon is a child subreaper, so
// a descendant that left the group, the session and the parent chain and cleared its environment
// is still found; zombies re-parented to it are reaped without robbing libuv of its children's
// exit statuses; without the native helper the scan-based finding (by marker) is what is left.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NO_NATIVE_ENV } from '../../src/os/native.js';
import {
  FIXTURES, daemonInTempDir, isAlive, makeTempDir, runCli, startForeground, treeReportPids, type ForegroundDaemon, type TreeReport,
} from '../helpers/daemon.js';
import { waitFor } from '../helpers/wait.js';
import { isAlive as isSame, killSeen, see, statOf, type Seen } from '../os/live-processes.js';

const SCRUBBED_WORKER = `
[worker]
command = ["sh", ${JSON.stringify(join(FIXTURES, 'scrubbed-escapee.sh'))}]
stop_timeout_ms = 3000
`;

function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
}

/** Generation `g`'s escapee, once it runs `sleep` with nothing that would lead a scan to it. */
async function escapeeOf(daemon: ForegroundDaemon, g: number, cleanups: Seen[]): Promise<Seen> {
  const pid = Number((await waitFor(`generation ${g}'s escapee to report`, () => new RegExp(`^escapee ${g} (\\d+)$`, 'm').exec(daemon.stdout)))[1]);
  await waitFor(`generation ${g}'s worker to be ready`, () => daemon.stdout.includes(`worker ${g} ready`));
  const workerPid = Number(/pid=(\d+)/.exec(await daemon.waitForLine(new RegExp(`worker spawned generation=${g} `)))![1]);
  await waitFor(`escapee ${pid} to exec sleep`, () => statOf(pid)?.comm === 'sleep');
  const seen = see(pid);
  cleanups.push(seen);
  const s = statOf(pid)!;
  assert.ok(s.sid !== workerPid && s.pgid !== workerPid && s.ppid !== workerPid, `escapee ${pid} left the worker's session, group and parent chain`);
  assert.ok(!environOf(pid).some((e) => e.startsWith('AUTOPILOTD_')), `escapee ${pid} carries no marker`);
  return seen;
}

test('a descendant that clears its environment, calls setsid and double-forks is stopped by restart-worker and by stop (#18)', async (t) => {
  const cleanups: Seen[] = [];
  t.after(() => cleanups.forEach(killSeen));
  const { daemon, configPath } = await daemonInTempDir(t, SCRUBBED_WORKER);
  const first = await escapeeOf(daemon, 1, cleanups);

  const restarted = await runCli(['restart-worker', '--config', configPath]);
  assert.equal(restarted.code, 0, restarted.stderr);
  // The old tree is gone before the next generation is spawned.
  await daemon.waitForLine(/worker spawned generation=2 /);
  assert.equal(isSame(first), false, `generation 1's escapee ${first.pid} survived the restart\n${daemon.lines.join('\n')}`);
  const second = await escapeeOf(daemon, 2, cleanups);

  const stopped = await runCli(['stop', '--config', configPath]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  assert.equal(isSame(second), false, `generation 2's escapee ${second.pid} survived the daemon's stop`);
});

/** The daemon's children in state Z, read from /proc directly. */
function zombieChildrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => {
    const s = statOf(p);
    return s !== null && s.ppid === pid && s.state === 'Z';
  });
}

test('a zombie re-parented to the daemon is reaped, and the worker’s own exit status is still reported (#18)', async (t) => {
  const scratch = makeTempDir();
  t.after(() => scratch.cleanup());
  const fifo = join(scratch.path, 'go');
  execFileSync('mkfifo', [fifo]);
  // The orphan waits on the fifo, then exits 7; its parent subshell is gone by then, so it dies as
  // the daemon's child. The worker polls until the orphan's pid is free (a zombie still holds it:
  // only its reaping frees it), then exits 42.
  const script = `orphan=$( (sh -c 'echo $$; exec >/dev/null; read x < "$0"; exit 7' ${JSON.stringify(fifo)} &) ); echo "orphan $orphan"; while kill -0 $orphan 2>/dev/null; do sleep 0.02; done; exit 42`;
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", ${JSON.stringify(script)}]
[restart]
initial_backoff_ms = 300000
`, { topLevel: 'log_level = "debug"' });
  const orphan = Number((await waitFor('the orphan to report', () => /^orphan (\d+)$/m.exec(daemon.stdout)))[1]);
  await waitFor(`orphan ${orphan} to be adopted by the daemon and wait on the fifo`, () => statOf(orphan)?.ppid === daemon.pid && statOf(orphan)?.state === 'S');
  const seen = see(orphan);
  t.after(() => killSeen(seen));
  writeFileSync(fifo, 'go\n');
  await daemon.waitForLine(new RegExp(`reaped an adopted orphan pid=${orphan} exit="code 7"`));
  await daemon.waitForLine(/WARN  worker exited with code 42 generation=1 /);
  assert.equal(statOf(orphan), null, 'the orphan is gone, not a zombie');
});

test('in a crash loop whose workers leave exiting orphans, every worker exit is reported with its code and no zombie piles up (#18)', async (t) => {
  const generations = 25;
  const { daemon, configPath } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "(sh -c 'exit 5' &); (sh -c 'sleep 0.01; exit 6' &); exit 3"]
[restart]
initial_backoff_ms = 1
max_backoff_ms = 1
max_consecutive_restarts = 1000
`);
  await daemon.waitForLine(new RegExp(`worker spawned generation=${generations + 1} `), 120_000);
  const stopped = await runCli(['stop-worker', '--config', configPath]);
  assert.equal(stopped.code, 0, stopped.stderr);
  const exits = daemon.matching(/worker (exited|stopped) /).slice(0, generations);
  assert.equal(exits.length, generations, daemon.lines.join('\n'));
  assert.deepEqual(exits.filter((l) => !/worker exited with code 3 /.test(l)), [], 'an exit was reported without its code');
  await waitFor(() => `no zombie child of the daemon (now ${zombieChildrenOf(daemon.pid)})`, () => zombieChildrenOf(daemon.pid).length === 0);
});

/** A foreground daemon whose worker is the tree fixture (tree-worker.sh), and the pids it reported. */
async function treeFixtureDaemon(t: TestContext, env: Record<string, string> = {}): Promise<{ daemon: ForegroundDaemon; report: TreeReport }> {
  const scratch = makeTempDir();
  t.after(() => scratch.cleanup());
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", ${JSON.stringify(join(FIXTURES, 'tree-worker.sh'))}, ${JSON.stringify(scratch.path)}]
stop_timeout_ms = 1500
`, { start: (c) => startForeground(c, [], env) });
  const line = await waitFor('the tree fixture to print its pids', () => daemon.stdout.split('\n').find((l) => l.startsWith('{"worker"')));
  return { daemon, report: JSON.parse(line) as TreeReport };
}

test('without the native helper the tree is found by scans, said once, and escapees carrying the marker are still stopped (#18)', async (t) => {
  const { daemon, report } = await treeFixtureDaemon(t, { [NO_NATIVE_ENV]: '1' });
  const all = treeReportPids(report);
  assert.equal(daemon.matching(/worker tree found by \/proc scans/).length, 1, daemon.lines.join('\n'));
  // Not a subreaper: the double-forked escapee went to init (or a subreaper above the daemon).
  assert.notEqual(statOf(report.daemon)?.ppid, daemon.pid);
  daemon.child.kill('SIGTERM');
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  assert.deepEqual(all.filter(isAlive), [], 'no process of the tree survives');
  assert.equal(daemon.matching(/worker tree found by \/proc scans/).length, 1);
});

test('with the native helper the daemon adopts the worker’s double-forked escapee and says nothing of scans (#18)', async (t) => {
  const { daemon, report } = await treeFixtureDaemon(t);
  assert.equal(statOf(report.daemon)?.ppid, daemon.pid, 'the double-forked escapee was re-parented to the daemon');
  daemon.child.kill('SIGTERM');
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  assert.deepEqual(treeReportPids(report).filter(isAlive), [], 'no process of the tree survives');
  assert.equal(daemon.matching(/found by \/proc scans/).length, 0);
});
