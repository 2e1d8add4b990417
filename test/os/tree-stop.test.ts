import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import { stopTree, type TreeStopEvent } from '../../src/os/tree-stop.js';
import { isAlive, killSeen, see, startBystander, startFixture, statOf, uniqueInstanceId, waitFor, type Seen } from './live-processes.js';
import type { TreeReport } from '../helpers/daemon.js';


const table = new ProcTable();
const uid = process.getuid!();
const protectedPids = protectedPidsOf(table, process.pid);
/** Slack for a loaded 2-core machine on top of the grace period. */
const MARGIN_MS = 2000;
const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);

async function startTree(label: string) {
  const instanceId = uniqueInstanceId(label);
  const fixture = await startFixture<TreeReport>('tree-worker.sh', instanceId);
  const r = fixture.report;
  const seen = [r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer].map(see);
  const identity: TreeIdentity = { rootPid: r.worker, pgid: r.worker, instanceId, uid, protectedPids };
  // The TERM-ignorer must have exec'd (with TERM still ignored) before the test relies on it.
  await waitFor(() => statOf(r.termIgnorer)?.comm === 'sleep', 'the TERM-ignorer to exec sleep');
  return {
    fixture,
    report: r,
    seen,
    identity,
    cleanup: () => fixture.cleanup([r.setsid, r.daemon]),
  };
}

describe('stopTree', () => {
  test('stops every process of a tree with escapees within the grace period, killing the one that ignores SIGTERM', async () => {
    const bystander = startBystander();
    const tree = await startTree('tree-stop');
    try {
      const events: TreeStopEvent[] = [];
      const graceMs = 1500;
      const startMs = performance.now();
      const report = await stopTree({ table, identity: tree.identity, graceMs, onEvent: (e) => events.push(e) });
      const tookMs = performance.now() - startMs;

      const alive = tree.seen.filter(isAlive).map((s) => s.pid);
      assert.deepEqual(alive, [], 'fixture processes still alive');
      await tree.fixture.exited;
      assert.deepEqual(report.survivors, []);

      const r = tree.report;
      assert.deepEqual(sorted(report.termSent), sorted(tree.seen.map((s) => s.pid)), 'every member got SIGTERM first');
      assert.deepEqual(report.killSent, [r.termIgnorer], 'only the TERM-ignorer needed SIGKILL');
      assert.ok(tookMs >= graceMs - 50, `stopped after ${tookMs} ms although a member ignores SIGTERM for the whole grace`);
      assert.ok(tookMs <= graceMs + MARGIN_MS, `took ${tookMs} ms`);
      assert.ok(report.durationMs <= tookMs + 1);

      assert.deepEqual(events[0], { kind: 'term_sent', pids: (events[0] as { pids: number[] }).pids, pgid: r.worker });
      assert.deepEqual(sorted((events[0] as { pids: number[] }).pids), sorted(tree.seen.map((s) => s.pid)));
      const kill = events.find((e) => e.kind === 'kill_sent');
      assert.ok(kill && kill.kind === 'kill_sent');
      assert.deepEqual(kill.pids, [r.termIgnorer]);
      assert.ok(kill.afterMs >= graceMs - 50, `SIGKILL after ${kill.afterMs} ms`);
      assert.deepEqual(events.at(-1), { kind: 'tree_gone', durationMs: report.durationMs });

      assert.ok(isAlive(bystander.seen), 'the bystander outside the tree was hit');
    } finally {
      await tree.cleanup();
      await bystander.stop();
    }
  });

  test('resolves at once when the tree is already empty', async () => {
    const events: TreeStopEvent[] = [];
    const identity: TreeIdentity = { rootPid: null, pgid: null, instanceId: uniqueInstanceId('empty'), uid, protectedPids };
    const startMs = performance.now();
    const report = await stopTree({ table, identity, graceMs: 60_000, onEvent: (e) => events.push(e) });
    assert.ok(performance.now() - startMs < 1000, 'waited although nothing was there to stop');
    assert.deepEqual({ ...report, durationMs: 0 }, { durationMs: 0, termSent: [], killSent: [], survivors: [] });
    assert.deepEqual(events, [{ kind: 'tree_gone', durationMs: report.durationMs }]);
  });

  test('aborting `force` during the grace period goes to SIGKILL at once', async () => {
    const tree = await startTree('tree-stop-force');
    try {
      const force = new AbortController();
      const graceMs = 60_000;
      const startMs = performance.now();
      const report = await stopTree({
        table,
        identity: tree.identity,
        graceMs,
        force: force.signal,
        onEvent: (e) => {
          if (e.kind === 'term_sent') setTimeout(() => force.abort(), 100);
        },
      });
      const tookMs = performance.now() - startMs;
      assert.ok(tookMs < MARGIN_MS, `took ${tookMs} ms with force aborted after 100 ms`);
      assert.deepEqual(tree.seen.filter(isAlive).map((s) => s.pid), []);
      assert.ok(report.killSent.includes(tree.report.termIgnorer));
      assert.equal(report.termSent.length, tree.seen.length);
    } finally {
      await tree.cleanup();
    }
  });

  test('an already aborted `force` skips SIGTERM and kills the whole tree', async () => {
    const tree = await startTree('tree-stop-forced');
    try {
      const events: TreeStopEvent[] = [];
      const report = await stopTree({ table, identity: tree.identity, graceMs: 60_000, force: AbortSignal.abort(), onEvent: (e) => events.push(e) });
      assert.deepEqual(tree.seen.filter(isAlive).map((s) => s.pid), []);
      assert.deepEqual(report.termSent, []);
      assert.deepEqual(sorted(report.killSent), sorted(tree.seen.map((s) => s.pid)));
      assert.deepEqual(events.map((e) => e.kind), ['kill_sent', 'tree_gone']);
    } finally {
      await tree.cleanup();
    }
  });

  test('as root, never signals a process of another uid inside the worker’s group', async (t) => {
    if (uid !== 0) {
      t.skip('needs root to start a process as another user');
      return;
    }
    const instanceId = uniqueInstanceId('tree-stop-foreign');
    const fixture = await startFixture<{ worker: number; own: number; foreign: number }>('foreign-uid-worker.sh', instanceId);
    const r = fixture.report;
    let foreign: Seen | undefined;
    try {
      await waitFor(() => statOf(r.foreign)?.comm === 'sleep' && table.uidOf(r.foreign) === 65534, 'the foreign process to run sleep as uid 65534');
      foreign = see(r.foreign);
      assert.equal(statOf(r.foreign)?.pgid, r.worker, 'the foreign process is in the worker’s group');
      const own = [see(r.worker), see(r.own)];
      const events: TreeStopEvent[] = [];
      const identity: TreeIdentity = { rootPid: r.worker, pgid: r.worker, instanceId, uid, protectedPids };
      const report = await stopTree({ table, identity, graceMs: 1500, onEvent: (e) => events.push(e) });
      assert.deepEqual(own.filter(isAlive).map((s) => s.pid), []);
      assert.ok(isAlive(foreign), 'the other uid’s process was killed');
      assert.ok(!report.termSent.includes(r.foreign) && !report.killSent.includes(r.foreign));
      assert.deepEqual(events[0], { kind: 'term_sent', pids: (events[0] as { pids: number[] }).pids, pgid: null }, 'kill(-pgid) would have reached it');
    } finally {
      if (foreign !== undefined) killSeen(foreign);
      await fixture.cleanup();
    }
  });
});
