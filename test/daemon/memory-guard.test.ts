// The memory guard with real daemons, real hogs and real signals. Low and critical system memory
// are simulated by thresholds set relative to the MemAvailable read at test time (e.g.
// min_available_bytes = MemAvailable + 8 GiB makes "low" true), never by exhausting the machine.
// Hogs the guard may kill by name carry a unique process name, so the daemon under test can never
// pick a process this test did not start (another test, a compiler) as its victim.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { daemonInTempDir, isAlive, type DaemonInTempDir, type ForegroundDaemon } from '../helpers/daemon.js';
import {
  GIB, MEMORY_WORKER, MIB, memAvailableBytes, mibText, startForegroundNamed, startHog, statusJson,
  uniqueComm, waitForOutput, waitForSamples, type Hog,
} from '../helpers/memory.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { INSTANCE_ENV } from '../../src/os/process-tree.js';
import { waitFor } from '../helpers/wait.js';

const timeOf = (line: string): number => Date.parse(line.slice(0, 24));
const mibField = (line: string, key: string): number => {
  const m = new RegExp(` ${key}=([\\d.]+)MiB`).exec(line);
  assert.ok(m, `no ${key}= in: ${line}`);
  return Number(m[1]);
};

/** "low" holds while MemAvailable stays below now + 8 GiB; "critical" never (1 MiB). */
function lowMemory(): string {
  return `min_available_bytes = "${mibText(memAvailableBytes() + 8 * GIB)}"\ncritical_threshold_bytes = "1MiB"\n`;
}

/** min_available_bytes of a config written with lowMemory(), in MiB. */
function minAvailableMiB(body: string): number {
  return Number(/min_available_bytes = "(\d+)MiB"/.exec(body)![1]);
}

/** "critical" (and so "low") holds while MemAvailable stays below now + 8 GiB. */
function criticalMemory(): string {
  const available = memAvailableBytes();
  return `min_available_bytes = "${mibText(available + 9 * GIB)}"\ncritical_threshold_bytes = "${mibText(available + 8 * GIB)}"\n`;
}

/** Neither low nor critical on any machine that can run these tests. */
const PLENTY_OF_MEMORY = 'min_available_bytes = "2MiB"\ncritical_threshold_bytes = "1MiB"\n';

/** A worker running test/fixtures/memory-worker.mjs with `args`, and fast memory-guard timings. */
function daemonToml(workerArgs: string[], memory: string): string {
  return `
[worker]
command = ${JSON.stringify([process.execPath, MEMORY_WORKER, ...workerArgs])}
stop_timeout_ms = 3000
[memory]
poll_interval_ms = 300
cooldown_ms = 200
kill_grace_ms = 500
node_kill_threshold_bytes = "64MiB"
${memory}
[restart]
initial_backoff_ms = 50
`;
}

/** A foreground daemon at debug level (one log line per memory sample), ended after the test. */
function withDaemon(t: TestContext, body: string, start?: (configPath: string) => Promise<ForegroundDaemon>): Promise<DaemonInTempDir> {
  return daemonInTempDir(t, body, start ? { topLevel: 'log_level = "debug"', start } : { topLevel: 'log_level = "debug"' });
}

/** A hog started by the test, SIGKILLed by its process group after the test whatever happened. */
function hogFor(t: TestContext, ...args: Parameters<typeof startHog>): Hog {
  const hog = startHog(...args);
  t.after(() => hog.kill());
  return hog;
}

async function workerPidOf(daemon: ForegroundDaemon, generation: number): Promise<number> {
  return Number((await waitForOutput(daemon, new RegExp(`^worker (\\d+) generation ${generation} ready$`, 'm')))[1]);
}

test('under low memory the largest worker child over node_kill_threshold gets SIGTERM; the larger worker main process is spared', async (t) => {
  // The worker main process holds 250 MiB, more than its child: without the rule that it is never
  // a victim, it would be the one picked.
  const body = daemonToml(['--own-mib', '250', '--', '--mib', '150'], lowMemory());
  const { daemon, configPath } = await withDaemon(t, body);
  const workerPid = await workerPidOf(daemon, 1);
  const childPid = Number((await waitForOutput(daemon, /^child (\d+)$/m))[1]);

  const kill = await daemon.waitForLine(new RegExp(`memory low: sending SIGTERM to node pid=${childPid} `));
  await waitForOutput(daemon, new RegExp(`^child-exited ${childPid} null SIGTERM$`, 'm'));
  await daemon.waitForLine(new RegExp(`memory: victim gone pid=${childPid} `));
  // What, how big and why: the child's name and pid, an RSS over the threshold, and the
  // availability that made memory low.
  assert.ok(mibField(kill, 'rss') > 64, `victim RSS above node_kill_threshold_bytes: ${kill}`);
  assert.ok(mibField(kill, 'available') < minAvailableMiB(body), `available below min_available_bytes: ${kill}`);

  // Memory stays low, so once the cooldown is over the guard looks for a victim again and finds
  // none: the worker main process (250 MiB) is still not one.
  const after = daemon.lines.indexOf(kill);
  await daemon.waitForLine(/memory low: low-nothing-to-kill/, 15_000, after);
  await waitForSamples(daemon, 3, daemon.lines.length);
  assert.ok(isAlive(workerPid), 'the worker main process survives');
  assert.equal(daemon.matching(/sending SIGTERM/).length, 1, 'exactly one process was killed');
  assert.deepEqual(daemon.matching(/worker exited|worker stopped|restarting worker/), [], 'the worker was not restarted');
  const status = await statusJson(configPath);
  assert.equal(status.worker.pid, workerPid);
  assert.equal(status.worker.generation, 1);
  assert.equal(status.restarts.total, 0);
  assert.equal(status.memory?.last_action?.pid, childPid);
  assert.equal(status.memory?.last_action?.kind, 'kill');
});

test('a victim that ignores SIGTERM is sent SIGKILL once kill_grace_ms has passed', async (t) => {
  const { daemon } = await withDaemon(t, daemonToml(['--', '--mib', '150', '--ignore-term'], lowMemory()));
  const workerPid = await workerPidOf(daemon, 1);
  const childPid = Number((await waitForOutput(daemon, /^child (\d+)$/m))[1]);

  const term = await daemon.waitForLine(new RegExp(`memory low: sending SIGTERM to node pid=${childPid} `));
  await waitForOutput(daemon, new RegExp(`^hog ${childPid} ignored SIGTERM$`, 'm'));
  const escalated = await daemon.waitForLine(new RegExp(`memory: node ignored SIGTERM for 500 ms; sending SIGKILL pid=${childPid}$`));
  await waitForOutput(daemon, new RegExp(`^child-exited ${childPid} null SIGKILL$`, 'm'));
  await daemon.waitForLine(new RegExp(`memory: victim gone pid=${childPid} `));
  const graceMs = timeOf(escalated) - timeOf(term);
  // Log timestamps have 1 ms resolution. No upper bound: how late it may come is for bench/.
  assert.ok(graceMs >= 499, `SIGKILL came ${graceMs} ms after SIGTERM; kill_grace_ms is 500`);
  assert.ok(isAlive(workerPid), 'the worker main process survives');
  assert.deepEqual(daemon.matching(/worker exited|worker stopped/), []);
});

test('a same-user hog outside the tree is left alone with hog_scope = "tree", and killed with "user" when named in hog_names', async (t) => {
  // Phase 1: a node hog of our own user beside the daemon, not in its tree, with default hog_names.
  const outsider = hogFor(t, ['--mib', '150']);
  await outsider.ready();
  const table = new ProcTable();
  const seen = table.read(outsider.pid);
  assert.equal(seen?.comm, 'node');
  assert.ok(seen.rssBytes > 64 * MIB, 'the hog is big enough to be a victim by size');

  const { daemon, configPath } = await withDaemon(t, daemonToml([], lowMemory()));
  const verdict = await daemon.waitForLine(/memory low: low-nothing-to-kill/);
  await waitForSamples(daemon, 5, daemon.lines.indexOf(verdict) + 1);
  assert.ok(isAlive(outsider.pid), 'the outside hog is untouched in hog_scope = "tree"');
  assert.deepEqual(daemon.matching(/sending SIGTERM/), []);

  // Phase 2: reload to hog_scope = "user", naming a second hog (a unique comm: nothing else on the
  // machine can match it). The first one, named "node", is not in hog_names and stays.
  const comm = uniqueComm('apd-hog-');
  writeFileSync(configPath, withMemoryKeys(configPath, `hog_scope = "user"\nhog_names = ["${comm}"]\n`));
  const from = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  await daemon.waitForLine(/configuration reloaded/, 15_000, from);
  const named = hogFor(t, ['--mib', '150', '--title', comm]);
  await daemon.waitForLine(new RegExp(`memory low: sending SIGTERM to ${comm} pid=${named.pid} `), 15_000, from);
  assert.deepEqual(await named.exited, { code: null, signal: 'SIGTERM' });
  await daemon.waitForLine(new RegExp(`memory: victim gone pid=${named.pid} `), 15_000, from);
  assert.ok(isAlive(outsider.pid), 'a hog whose name is not in hog_names is still untouched');
  assert.equal(daemon.matching(/sending SIGTERM/).length, 1);
});

test('as root, a process of another uid is never killed, even carrying the instance marker and named in hog_names', { skip: process.getuid!() !== 0 && 'needs root to start a process as another user' }, async (t) => {
  const comm = uniqueComm('apd-uid-');
  const { daemon } = await withDaemon(t, daemonToml([], `${lowMemory()}hog_scope = "user"\nhog_names = ["${comm}"]\n`));
  const instanceId = await waitFor('the daemon instance id', () => daemon.instanceId);
  await workerPidOf(daemon, 1);
  // Bigger than the own-uid hog below, so it would be picked first if the uid were not checked.
  const foreign = hogFor(t, ['--mib', '200', '--title', comm], { uid: 65534, gid: 65534, env: { [INSTANCE_ENV]: instanceId } });
  await foreign.ready();
  const table = new ProcTable();
  assert.equal(table.uidOf(foreign.pid), 65534);
  assert.equal(table.hasEnvMarker(foreign.pid, INSTANCE_ENV, instanceId), true);
  assert.equal(table.read(foreign.pid)?.comm, comm);

  // Several looks at the system while it is low: the tree is still only the worker main process.
  const from = daemon.lines.length;
  const end = await waitForSamples(daemon, 5, from);
  const samples = daemon.lines.slice(from, end).filter((l) => / memory level=/.test(l));
  for (const line of samples) assert.match(line, /level=low .*tree_processes=1 /);
  assert.ok(isAlive(foreign.pid));
  assert.deepEqual(daemon.matching(/sending SIGTERM/), []);

  // The guard is armed: an own-uid process of that name is killed, and the foreign one still not.
  const own = hogFor(t, ['--mib', '100', '--title', comm]);
  await daemon.waitForLine(new RegExp(`memory low: sending SIGTERM to ${comm} pid=${own.pid} `), 15_000, from);
  assert.deepEqual(await own.exited, { code: null, signal: 'SIGTERM' });
  const done = await daemon.waitForLine(new RegExp(`memory: victim gone pid=${own.pid} `), 15_000, from);
  await waitForSamples(daemon, 5, daemon.lines.indexOf(done) + 1);
  assert.ok(isAlive(foreign.pid), 'the other uid\'s process survives');
  assert.equal(daemon.matching(/sending SIGTERM/).length, 1);
});

test('a worker tree over worker_max_bytes is restarted gracefully, counted as a memory restart', async (t) => {
  // Only generation 1 starts the growing child, so the new generation stays under the limit. The
  // child stops at 140 MiB: with the two Node processes' own ~44 MiB each the tree holds at ~228 MiB,
  // over the limit but under 125 % of it (250 MiB), past which a stop turns to SIGKILL at once; a
  // loaded machine may sample the tree only once it is fully grown.
  const { daemon, configPath } = await withDaemon(t, daemonToml(
    ['--child-generation', '1', '--', '--mib', '140', '--rate-mib-s', '500'],
    `${PLENTY_OF_MEMORY}worker_max_bytes = "200MiB"\n`,
  ));
  const oldWorker = await workerPidOf(daemon, 1);
  const child = Number((await waitForOutput(daemon, /^child (\d+)$/m))[1]);
  const line = await daemon.waitForLine(/memory tree_limit: restarting the worker /);
  t.diagnostic(line);
  assert.ok(mibField(line, 'tree_rss') > 200, line);
  // This machine has no swap (free shows 0): the real VmSwap of every member is 0, and so is the sum.
  assert.equal(mibField(line, 'tree_swap'), 0, line);
  assert.match(line, / limit=200\.0MiB$/);
  await daemon.waitForLine(/SIGTERM sent to the worker tree/);
  await daemon.waitForLine(/restarting worker in \d+ ms cause=memory /);
  const done = await daemon.waitForLine(/memory: old worker tree gone /);
  assert.ok(mibField(done, 'tree_rss_before') > 200 && mibField(done, 'tree_rss_after') < 1, `before/after figures: ${done}`);
  const newWorker = await workerPidOf(daemon, 2);
  await daemon.waitForLine(/worker spawned generation=2 /);
  assert.match(daemon.matching(/worker stopped/)[0]!, /worker stopped with signal SIGTERM generation=1 /, 'the old worker got SIGTERM, not SIGKILL');
  assert.ok(!isAlive(oldWorker) && !isAlive(child), 'the old tree is gone');

  const status = await statusJson(configPath);
  assert.equal(status.restarts.memory, 1);
  assert.equal(status.worker.generation, 2);
  assert.equal(status.worker.state, 'running');
  assert.equal(status.worker.pid, newWorker);
  assert.equal(status.memory?.last_action?.reason, 'tree_limit');
  assert.equal(status.memory?.last_action?.swap_bytes, 0);
  assert.equal(status.memory?.tree_swap_bytes, 0, 'tree_swap_bytes is there, 0 without swap');
  assert.ok((status.memory?.tree_rss_bytes ?? 0) > 0, 'tree_rss_bytes stays the RSS');
  assert.ok(status.memory!.top.length > 0 && status.memory!.top.every((p) => p.swap_bytes === 0), JSON.stringify(status.memory?.top));

  // The new tree is small: the guard keeps looking and restarts nothing more.
  await waitForSamples(daemon, 5, daemon.lines.length);
  assert.equal(daemon.matching(/memory tree_limit: restarting/).length, 1);
  assert.equal(daemon.matching(/memory .*sending SIGTERM/).length, 0);
});

test('a stopped (SIGSTOP) victim gets SIGCONT after SIGTERM and dies of the SIGTERM, not at the end of kill_grace_ms (#15)', async (t) => {
  // Memory is plentiful until the child is frozen; then a reload makes it low.
  const body = daemonToml(['--', '--mib', '150'], PLENTY_OF_MEMORY).replace('kill_grace_ms = 500', 'kill_grace_ms = 60000');
  const { daemon, configPath } = await withDaemon(t, body);
  await workerPidOf(daemon, 1);
  const childPid = Number((await waitForOutput(daemon, /^child (\d+)$/m))[1]);
  await waitForOutput(daemon, new RegExp(`^ready ${childPid} `, 'm'));
  process.kill(childPid, 'SIGSTOP');
  await waitFor('the child to be stopped', () => /\) T /.test(readFileSync(`/proc/${childPid}/stat`, 'latin1')));

  writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(PLENTY_OF_MEMORY, lowMemory()));
  const from = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  await daemon.waitForLine(/configuration reloaded/, 15_000, from);
  await daemon.waitForLine(new RegExp(`memory low: sending SIGTERM to node pid=${childPid} `), 15_000, from);
  await waitForOutput(daemon, new RegExp(`^child-exited ${childPid} null SIGTERM$`, 'm'));
  await daemon.waitForLine(new RegExp(`memory: victim gone pid=${childPid} `), 15_000, from);
  assert.deepEqual(daemon.matching(/ignored SIGTERM for .* sending SIGKILL/), []);
});

test('a tree that keeps growing through a memory restart gets SIGKILL once over 125 % of worker_max_bytes, however long the grace (#15)', async (t) => {
  // Generation 1's child ignores SIGTERM and leaks 40 MiB/s: the grace would let it grow for 60 s.
  const body = daemonToml(['--child-generation', '1', '--', '--mib', '400', '--rate-mib-s', '40', '--ignore-term'], `${PLENTY_OF_MEMORY}worker_max_bytes = "100MiB"\n`)
    .replace('stop_timeout_ms = 3000', 'stop_timeout_ms = 60000');
  const { daemon, configPath } = await withDaemon(t, body);
  const child = Number((await waitForOutput(daemon, /^child (\d+)$/m))[1]);
  const restart = await daemon.waitForLine(/memory tree_limit: restarting the worker /, 30_000);
  const from = daemon.lines.indexOf(restart);
  await daemon.waitForLine(/SIGTERM sent to the worker tree/, 15_000, from);
  await waitForOutput(daemon, new RegExp(`^hog ${child} ignored SIGTERM$`, 'm'));
  const over = await daemon.waitForLine(/tree over limit during the grace: SIGKILL now /, 30_000, from);
  assert.ok(mibField(over, 'tree_rss') > 125, over);
  assert.equal(mibField(over, 'kill_above'), 125);
  await daemon.waitForLine(/SIGKILL sent after \d+ ms/, 15_000, from);
  await daemon.waitForLine(/worker tree gone/, 15_000, from);
  await workerPidOf(daemon, 2);
  assert.ok(!isAlive(child), 'the growing child is gone');
  const status = await statusJson(configPath);
  assert.equal(status.worker.generation, 2);
  assert.equal(status.restarts.memory, 1);
});

test('a second generation that leaks is restarted by the tree limit inside what would be the cooldown (#15)', async (t) => {
  // Every generation's child leaks; a cooldown far longer than the test would hold a second restart.
  const body = daemonToml(['--', '--mib', '400', '--rate-mib-s', '40'], `${PLENTY_OF_MEMORY}worker_max_bytes = "100MiB"\n`)
    .replace('cooldown_ms = 200', 'cooldown_ms = 600000');
  const { daemon, configPath } = await withDaemon(t, body);
  const first = await daemon.waitForLine(/memory tree_limit: restarting the worker /, 30_000);
  const done = await daemon.waitForLine(/memory: old worker tree gone /, 30_000, daemon.lines.indexOf(first));
  await workerPidOf(daemon, 2);
  const second = await daemon.waitForLine(/memory tree_limit: restarting the worker /, 30_000, daemon.lines.indexOf(done));
  assert.ok(mibField(second, 'tree_rss') > 100, second);
  await workerPidOf(daemon, 3);
  const status = await statusJson(configPath);
  assert.ok(status.restarts.memory >= 2, `restarts: ${JSON.stringify(status.restarts)}`);
});

test('critical memory with no victim restarts the worker; the daemon and the test process are never signalled', async (t) => {
  // The daemon and this test process both match hog_names and are far over the kill threshold:
  // only their protection (the daemon and its ancestors) keeps them from being the victims.
  const daemonComm = uniqueComm('apd-d-');
  const testComm = uniqueComm('apd-t-');
  const received: string[] = [];
  const record = (signal: NodeJS.Signals): void => void received.push(signal);
  // Setting the title sets the comm (prctl PR_SET_NAME); afterwards the old comm is put back.
  const originalComm = new ProcTable().read(process.pid)!.comm;
  process.title = testComm;
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, record);
  t.after(() => {
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(s, record);
    process.title = originalComm;
  });
  assert.equal(new ProcTable().read(process.pid)?.comm, testComm);

  const body = daemonToml([], `${criticalMemory()}hog_scope = "user"\nhog_names = ["${daemonComm}", "${testComm}"]\n`)
    .replace('node_kill_threshold_bytes = "64MiB"', 'node_kill_threshold_bytes = "1MiB"');
  const { daemon, configPath } = await withDaemon(t, body, (config) => startForegroundNamed(dirname(config), daemonComm, config));
  assert.equal(new ProcTable().read(daemon.pid)?.comm, daemonComm);
  // From the spawn line, not the worker's "ready": critical memory may restart it before it prints.
  const spawned = await daemon.waitForLine(/worker spawned generation=1 pid=\d+ /);
  const oldWorker = Number(/ pid=(\d+) /.exec(spawned)![1]);

  const line = await daemon.waitForLine(/memory critical: restarting the worker /);
  assert.match(line, / limit=null$/);
  // The spawn line again: memory stays critical, so generation 2 may be restarted before it prints.
  await daemon.waitForLine(/worker spawned generation=2 /);
  assert.ok(!isAlive(oldWorker));
  const status = await statusJson(configPath);
  assert.ok(status.restarts.memory >= 1, `restarts: ${JSON.stringify(status.restarts)}`);
  assert.equal(status.memory?.level, 'critical');

  assert.ok(isAlive(daemon.pid) && daemon.child.exitCode === null, 'the daemon is alive');
  assert.deepEqual(daemon.matching(/sending SIGTERM|daemon stopping|configuration reloaded/), [], 'nothing was signalled');
  assert.deepEqual(received, [], 'the test process got no signal');
});

/** The config file at `path` with `extraMemory` keys added to its [memory] section. */
function withMemoryKeys(path: string, extraMemory: string): string {
  return readFileSync(path, 'utf8').replace('[memory]\n', `[memory]\n${extraMemory}`);
}
