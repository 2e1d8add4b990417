import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { ProcTable, type ProcessInfo } from '../../src/os/proc-table.js';
import { protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import { stopTree, type TreeStopEvent } from '../../src/os/tree-stop.js';
import { FIXTURES_DIR, isAlive, killGroup, killSeen, processKey, see, spawnOnPid, startBystander, startFixture, statOf, uniqueInstanceId, waitFor, type Seen } from './live-processes.js';
import type { TreeReport } from '../helpers/daemon.js';


const table = new ProcTable();
const uid = process.getuid!();
const protectedPids = protectedPidsOf(table, process.pid);
/** Slack for a loaded 2-core machine on top of the grace period. */
const MARGIN_MS = 2000;
const MIB = 1024 * 1024;
const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);

async function startTree(label: string) {
  const instanceId = uniqueInstanceId(label);
  const fixture = await startFixture<TreeReport>('tree-worker.sh', instanceId);
  const r = fixture.report;
  const seen = [r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer].map(see);
  const identity: TreeIdentity = { root: processKey(r.worker), pgid: r.worker, instanceId, uid, protectedPids };
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
    const identity: TreeIdentity = { root: null, pgid: null, instanceId: uniqueInstanceId('empty'), uid, protectedPids };
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
      const identity: TreeIdentity = { root: processKey(r.worker), pgid: r.worker, instanceId, uid, protectedPids };
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

/** Counts its scans, so a test can wait until the stop under test has looked at /proc again. */
class CountingTable extends ProcTable {
  scans = 0;
  override scan(): ProcessInfo[] {
    this.scans++;
    return super.scan();
  }
}

/** The test's environment without any instance marker: a bystander must not carry one. */
function unmarkedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.AUTOPILOTD_INSTANCE;
  return env;
}

describe('stopTree after the kernel handed the exited worker’s pid out again (#14)', () => {
  // The worker dies of the SIGTERM and is reaped while the stop waits out its grace for a setsid'd
  // child that ignores SIGTERM; then a bystander of ours gets the worker's number, as its pid or as
  // its group and session id. The stop must go on killing the escapee and never touch the bystander.
  const bystanders: Array<{ what: string; place: (pid: number) => Promise<Seen | null> }> = [
    {
      what: 'a plain process given the exited worker’s pid',
      place: async (pid) => {
        const child = await spawnOnPid(pid, ['sleep', '1000'], { stdio: 'ignore', env: unmarkedEnv() });
        return child === null ? null : see(pid);
      },
    },
    {
      what: 'a process whose new group and session got the exited worker’s number',
      place: async (pid) => {
        const leader = await spawnOnPid(pid, ['sh', '-c', 'sleep 1000 & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'], env: unmarkedEnv() });
        if (leader === null) return null;
        // Listened for at once: Node may report the exit before the line the leader printed.
        const leaderExited = once(leader, 'exit');
        const [line] = (await once(leader.stdout!, 'data')) as [Buffer];
        const member = Number(line.toString().trim());
        placed.push(see(member)); // ended in the test's finally whatever happens next
        await leaderExited; // and reaped: no process has that pid, but `member` holds it as group and session id
        const s = statOf(member);
        assert.ok(s !== null && s.pgid === pid && s.sid === pid && s.ppid !== pid, `bystander ${member}: ${JSON.stringify(s)}`);
        return see(member);
      },
    },
  ];

  /** Every bystander placed, so that a failed check before `place` returns still ends it. */
  const placed: Seen[] = [];
  for (const { what, place } of bystanders) {
    test(`as root, ${what} during the grace is never signalled, while the escapee is still killed`, async (t) => {
      if (uid !== 0) return t.skip('steering the next pid (ns_last_pid) needs root');
      const instanceId = uniqueInstanceId('tree-stop-reuse');
      const worker = spawn('sh', ['-c', `setsid sh -c 'trap "" TERM; exec sleep 1000' & echo $!; wait`], {
        detached: true,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId },
      });
      const workerPid = worker.pid!;
      const workerExited = once(worker, 'exit');
      let escapee: Seen | undefined;
      let bystander: Seen | null = null;
      const force = new AbortController();
      let stopped: Promise<unknown> = Promise.resolve();
      try {
        const [line] = (await once(worker.stdout!, 'data')) as [Buffer];
        const escapeePid = Number(line.toString().trim());
        await waitFor(() => {
          const s = statOf(escapeePid);
          return s?.comm === 'sleep' && s.sid === escapeePid;
        }, 'the escapee to lead its own session and run sleep, ignoring SIGTERM');
        escapee = see(escapeePid);

        const table = new CountingTable();
        const events: TreeStopEvent[] = [];
        const identity: TreeIdentity = { root: processKey(workerPid), pgid: workerPid, instanceId, uid, protectedPids };
        const stopping = stopTree({ table, identity, graceMs: 120_000, force: force.signal, onEvent: (e) => events.push(e) });
        stopped = stopping;
        await workerExited; // SIGTERM ended it, and Node reaped it: the kernel may hand its pid out again
        bystander = await place(workerPid);
        if (bystander === null) return t.skip(`another process took pid ${workerPid} before the bystander could`);
        const eventsBefore = events.length;
        // A look during the grace would SIGTERM a process newly taken for a member; then the forced
        // SIGKILL rounds look again.
        const scansBefore = table.scans;
        await waitFor(() => table.scans > scansBefore, 'the stop to look at the tree with the bystander in place');
        force.abort();
        const report = await stopping;

        assert.ok(isAlive(bystander), `the bystander ${bystander.pid} on the worker's number was killed`);
        const signalled = events.slice(eventsBefore).flatMap((e) => ('pids' in e ? e.pids : []));
        assert.ok(!signalled.includes(bystander.pid), `the bystander ${bystander.pid} was signalled: ${JSON.stringify(events)}`);
        assert.ok(!isAlive(escapee), 'the TERM-ignoring escapee survived');
        assert.deepEqual(report.killSent, [escapee.pid]);
        assert.deepEqual(report.survivors, []);
      } finally {
        force.abort();
        await stopped;
        if (escapee !== undefined) killSeen(escapee);
        if (bystander !== null) killSeen(bystander);
        for (const p of placed.splice(0)) killSeen(p);
        if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
        worker.stdout!.destroy();
        await workerExited;
      }
    });
  }
});

describe('stopTree makes progress (#15)', () => {
  test('stopped (SIGSTOP) members get SIGCONT after SIGTERM and exit by their TERM handlers, without SIGKILL, inside a 60 s grace', async () => {
    const instanceId = uniqueInstanceId('tree-stop-frozen');
    const fixture = await startFixture<{ worker: number; escapee: number }>('term-handlers.sh', instanceId);
    const { worker, escapee } = fixture.report;
    const force = new AbortController();
    try {
      // Frozen: the worker's group, and the escapee's own group (setsid made it a leader).
      process.kill(-worker, 'SIGSTOP');
      process.kill(-escapee, 'SIGSTOP');
      await waitFor(() => statOf(worker)?.state === 'T' && statOf(escapee)?.state === 'T', 'the worker and the escapee to be stopped');
      const events: TreeStopEvent[] = [];
      const identity: TreeIdentity = { root: processKey(worker), pgid: worker, instanceId, uid, protectedPids };
      // The grace is long enough that a stop waiting it out would be told apart by the SIGKILL, not by a clock.
      const report = await stopTree({ table, identity, graceMs: 60_000, force: force.signal, onEvent: (e) => events.push(e) });
      assert.deepEqual(report.killSent, [], `SIGKILL was needed: ${JSON.stringify(events)}`);
      assert.deepEqual(report.survivors, []);
      assert.ok(report.termSent.includes(worker) && report.termSent.includes(escapee));
      assert.ok(existsSync(join(fixture.scratchDir, 'worker-term')), 'the worker’s TERM handler did not run');
      assert.ok(existsSync(join(fixture.scratchDir, 'escapee-term')), 'the escapee’s TERM handler did not run');
      assert.deepEqual(await fixture.exited, [0, null], 'the worker exited by its handler (exit 0)');
    } finally {
      force.abort();
      await fixture.cleanup([escapee]);
    }
  });

  test('a tree that keeps growing past killAboveTreeBytes during a 60 s grace gets SIGKILL then, and the event gives the figures', async () => {
    const instanceId = uniqueInstanceId('tree-stop-growing');
    // Ignores SIGTERM and leaks 40 MiB/s: only the limit can end its grace early.
    const hog = spawn(process.execPath, [join(FIXTURES_DIR, 'hog.mjs'), '--ignore-term', '--mib', '1000', '--rate-mib-s', '40'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId },
    });
    const pid = hog.pid!;
    const exited = once(hog, 'exit');
    let output = '';
    hog.stdout!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    const force = new AbortController();
    try {
      await waitFor(() => (table.read(pid)?.rssBytes ?? 0) > 80 * MIB, 'the hog to pass 80 MiB');
      const limitBytes = table.read(pid)!.rssBytes + 40 * MIB;
      const events: TreeStopEvent[] = [];
      const identity: TreeIdentity = { root: processKey(pid), pgid: pid, instanceId, uid, protectedPids };
      const report = await stopTree({ table, identity, graceMs: 60_000, force: force.signal, killAboveTreeBytes: limitBytes, onEvent: (e) => events.push(e) });

      assert.deepEqual(events.map((e) => e.kind), ['term_sent', 'tree_over_limit', 'kill_sent', 'tree_gone']);
      const over = events[1]!;
      assert.ok(over.kind === 'tree_over_limit');
      assert.equal(over.limitBytes, limitBytes);
      assert.ok(over.treeRssBytes > limitBytes, `tree at ${over.treeRssBytes} bytes, limit ${limitBytes}`);
      assert.equal(over.treeSwapBytes, 0, 'this machine has no swap: the real VmSwap reads 0');
      assert.deepEqual(report.killSent, [pid]);
      assert.deepEqual(await exited, [null, 'SIGKILL']);
      assert.match(output, new RegExp(`^hog ${pid} ignored SIGTERM$`, 'm'), 'SIGTERM came first');
    } finally {
      force.abort();
      killGroup(pid);
      hog.stdout!.destroy();
      await exited;
    }
  });

  test('a tree under killAboveTreeBytes by RSS but over it by RSS + swap gets SIGKILL at the first look, whatever its grace', async () => {
    // This machine has no swap (free shows 0), so the kernel cannot show a swapped-out member: the
    // TERM-ignorer's VmSwap is injected (real reading + 2 GiB). The tree, its RSS and the signals are real.
    const tree = await startTree('tree-stop-swap');
    const swapped = tree.report.termIgnorer;
    const swapTable = new (class extends ProcTable {
      override swapBytes(pid: number): number | null {
        const real = super.swapBytes(pid);
        return real === null || pid !== swapped ? real : real + 2 * 1024 * MIB;
      }
    })();
    try {
      const rssBytes = tree.seen.reduce((sum, s) => sum + (table.read(s.pid)?.rssBytes ?? 0), 0);
      const limitBytes = rssBytes + 1024 * MIB;
      const events: TreeStopEvent[] = [];
      const report = await stopTree({ table: swapTable, identity: tree.identity, graceMs: 60_000, killAboveTreeBytes: limitBytes, onEvent: (e) => events.push(e) });
      assert.deepEqual(events.map((e) => e.kind), ['term_sent', 'tree_over_limit', 'kill_sent', 'tree_gone']);
      const over = events[1]!;
      assert.ok(over.kind === 'tree_over_limit');
      assert.ok(over.treeRssBytes <= limitBytes, `RSS alone (${over.treeRssBytes}) is under the limit (${limitBytes})`);
      assert.equal(over.treeSwapBytes, 2 * 1024 * MIB);
      assert.ok(report.killSent.includes(swapped));
      assert.ok(report.durationMs < MARGIN_MS * 5, `took ${report.durationMs} ms of a 60 s grace`);
    } finally {
      await tree.cleanup();
    }
  });

  test('a tree that stays under killAboveTreeBytes keeps its grace', async () => {
    const tree = await startTree('tree-stop-under-limit');
    try {
      const events: TreeStopEvent[] = [];
      const graceMs = 1000;
      const report = await stopTree({ table, identity: tree.identity, graceMs, killAboveTreeBytes: 64 * 1024 * MIB, onEvent: (e) => events.push(e) });
      assert.deepEqual(report.killSent, [tree.report.termIgnorer]);
      assert.ok(!events.some((e) => e.kind === 'tree_over_limit'));
      const kill = events.find((e) => e.kind === 'kill_sent');
      assert.ok(kill?.kind === 'kill_sent' && kill.afterMs >= graceMs - 50, `SIGKILL after ${JSON.stringify(kill)}`);
    } finally {
      await tree.cleanup();
    }
  });
});
