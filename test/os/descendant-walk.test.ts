// The worker tree as this process's descendants (issue #18), with the real kernel: this test file's
// process is made a child subreaper, as the daemon makes itself, and spawns its "worker" fixtures
// with child_process (recorded by the registry; the worker tagged as such). Only the vanishing of a
// process in the middle of a walk cannot be produced on demand: that one test uses a ProcTable whose
// stat reads are steered, and says so.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { childRegistry, type ChildRegistry } from '../../src/os/child-registry.js';
import { DescendantWalker, enableDescendantWalk, WALK_MAX_PASSES } from '../../src/os/descendant-walk.js';
import { loadNative, type ReapedChild } from '../../src/os/native.js';
import { ProcTable, type EnvMarker, type ProcessInfo } from '../../src/os/proc-table.js';
import { protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import { stopTree } from '../../src/os/tree-stop.js';
import { TreeTracker } from '../../src/os/tree-tracker.js';
import { FIXTURES_DIR, isAlive, killSeen, see, statOf, uniqueInstanceId, waitFor, type Seen } from './live-processes.js';

/** Counts what a look at the tree reads, so a test can tell O(tree) from O(machine). */
class CountingTable extends ProcTable {
  counts = { listPids: 0, scan: 0, read: 0, childrenOf: 0, uidOf: 0, envMarker: 0 };
  override listPids(): number[] {
    this.counts.listPids++;
    return super.listPids();
  }
  override scan(): ProcessInfo[] {
    this.counts.scan++;
    return super.scan();
  }
  override read(pid: number): ProcessInfo | null {
    this.counts.read++;
    return super.read(pid);
  }
  override childrenOf(pid: number): { pids: number[]; whole: boolean } | null {
    this.counts.childrenOf++;
    return super.childrenOf(pid);
  }
  override uidOf(pid: number): number | null {
    this.counts.uidOf++;
    return super.uidOf(pid);
  }
  override envMarker(pid: number, name: string, value: string): EnvMarker {
    this.counts.envMarker++;
    return super.envMarker(pid, name, value);
  }
  reset(): void {
    for (const k of Object.keys(this.counts) as (keyof CountingTable['counts'])[]) this.counts[k] = 0;
  }
}

const table = new CountingTable();
const uid = process.getuid!();
const reaped: ReapedChild[] = [];
let walker: DescendantWalker;
let registry: ChildRegistry;
/** Processes of the machine outside this process's descendants, started before it was a subreaper. */
const bystanders: Seen[] = [];
const BYSTANDERS = 300;

function identityOf(worker: ChildProcess | null): TreeIdentity {
  const pid = worker?.pid ?? null;
  return {
    root: pid === null ? null : { pid, startTimeTicks: Number(statOf(pid)!.startTime) },
    pgid: pid, instanceId: uniqueInstanceId('walk'), uid, protectedPids: protectedPidsOf(table, process.pid),
  };
}

/** Spawns `script` (sh) as the worker: own session and group, tagged in the registry. */
function spawnWorker(script: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'], env });
  registry.markWorker(child.pid!);
  return child;
}

async function lines(child: ChildProcess, n: number): Promise<string[]> {
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.split('\n').length > n, `${n} lines from pid ${child.pid}`);
  return out.split('\n').slice(0, n);
}

async function endGroup(child: ChildProcess, extra: Seen[] = []): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  extra.forEach(killSeen);
  child.stdout?.destroy();
  await exited;
}

/** This process's children in state Z, read from /proc directly. */
function zombieChildren(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    const s = statOf(pid);
    return s !== null && s.ppid === process.pid && s.state === 'Z';
  });
}

before(async () => {
  // The bystanders first, while orphans still go to init: a double fork leaves them outside.
  const sh = spawn('sh', ['-c', `i=0; while [ $i -lt ${BYSTANDERS} ]; do (sleep 1000 </dev/null >/dev/null 2>&1 & echo $!) ; i=$((i+1)); done`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  sh.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await once(sh, 'exit');
  for (const pid of out.trim().split('\n').map(Number)) bystanders.push(see(pid));
  const setup = enableDescendantWalk(loadNative({}), table, (r) => reaped.push(r));
  assert.ok(setup.walker !== null, setup.reason ?? '');
  walker = setup.walker;
  registry = childRegistry()!;
  // As the daemon does: adopted zombies are reaped as they end.
  process.on('SIGCHLD', () => walker.reapAdopted());
});

after(async () => {
  bystanders.forEach(killSeen);
});

describe('the descendant walk', () => {
  test('finds a descendant that cleared its environment, left session and group and lost its parents, and a scan-based stop does not', async () => {
    // env -i: no marker; setsid: own session and group; the double fork: its parents exit.
    const worker = spawnWorker(`exec sh ${join(FIXTURES_DIR, 'scrubbed-escapee.sh')}`, { ...process.env, AUTOPILOTD_GENERATION: '1' });
    const [line] = await lines(worker, 2);
    const pid = Number(/^escapee 1 (\d+)$/.exec(line!)?.[1]);
    await waitFor(() => statOf(pid)?.comm === 'sleep' && statOf(pid)?.ppid === process.pid, `escapee ${pid} to run sleep, adopted by us`);
    const escapee = see(pid);
    try {
      const s = statOf(pid)!;
      assert.ok(s.sid !== worker.pid && s.pgid !== worker.pid, 'it left the worker’s session and group');
      const identity = identityOf(worker);
      const tree = new TreeTracker(table, { walker }).sample(identity, 0).members;
      // The worker's own `sleep 1` may be there too.
      assert.deepEqual(tree.filter((p) => p.ppid !== worker.pid).map((p) => p.pid).sort((a, b) => a - b), [worker.pid!, pid].sort((a, b) => a - b));
      // By the scan's rules (group, session, ancestry, marker) it is not part of the tree: that stop
      // ends the worker only.
      const workerExited = once(worker, 'exit');
      const scanned = await stopTree({ table, identity, graceMs: 3000 });
      await workerExited;
      assert.ok(scanned.termSent.includes(worker.pid!) && !scanned.termSent.includes(pid), `the scan-based stop signalled ${scanned.termSent}`);
      assert.ok(isAlive(escapee), 'the scan-based stop found the escapee after all');
      const walked = await stopTree({ table, identity: { ...identity, root: null, pgid: null }, graceMs: 3000, walker });
      assert.deepEqual(walked, { ...walked, termSent: [pid], survivors: [] });
      assert.equal(isAlive(escapee), false, 'the escapee survived the stop');
    } finally {
      await endGroup(worker, [escapee]);
    }
  });

  test('a helper’s subtree and the orphans it leaves in its session are not the worker’s; an orphan that made a session of its own is', async () => {
    const worker = spawnWorker('echo ready; exec sleep 1000');
    await lines(worker, 1);
    // A helper (not tagged as the worker) in its own session: one orphan stays in that session, one calls setsid.
    const helper = spawn('sh', ['-c', '(sleep 1000 & echo $!); (setsid sleep 1000 & echo $!); sleep 1000 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    const [inSession, ownSession, child] = (await lines(helper, 3)).map(Number) as [number, number, number];
    const seen = [inSession, ownSession, child].map(see);
    try {
      await waitFor(() => statOf(ownSession)?.sid === ownSession && statOf(inSession)?.ppid === process.pid && statOf(ownSession)?.ppid === process.pid, 'both orphans adopted, one in a session of its own');
      const members = () => walker.workerTree(identityOf(worker)).members.map((p) => p.pid);
      assert.deepEqual(members().sort((a, b) => a - b), [worker.pid!, ownSession].sort((a, b) => a - b));
      // The helper exits: its session id is still held by its orphan, which stays the helper's.
      process.kill(helper.pid!, 'SIGKILL');
      await once(helper, 'exit');
      assert.deepEqual(members().sort((a, b) => a - b), [worker.pid!, ownSession].sort((a, b) => a - b));
      assert.ok(!members().includes(child), 'the helper’s child (orphaned now) joined the worker’s tree');
    } finally {
      await endGroup(worker, seen);
      await endGroup(helper, seen);
    }
  });

  test('a tree sample lists no /proc, reads no environment, and its reads grow with the tree, not with the machine', async () => {
    const machine = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;
    assert.ok(machine > BYSTANDERS, `${machine} processes on the machine`);
    const readsFor = async (children: number): Promise<{ reads: number; members: number }> => {
      const worker = spawnWorker(`i=0; while [ $i -lt ${children} ]; do sleep 1000 & i=$((i+1)); done; echo ready; exec sleep 1000`);
      try {
        await lines(worker, 1);
        const identity = identityOf(worker);
        const tracker = new TreeTracker(table, { walker });
        await waitFor(() => tracker.sample(identity, 0).members.filter((p) => p.ppid === worker.pid).length === children, `${children} sleeps in the tree`);
        table.reset();
        const members = tracker.sample(identity, 1).members.length;
        const c = table.counts;
        assert.deepEqual([c.listPids, c.scan, c.envMarker], [0, 0, 0], `a sample listed /proc or read environments: ${JSON.stringify(c)}`);
        return { reads: c.read + c.childrenOf + c.uidOf, members };
      } finally {
        await endGroup(worker);
      }
    };
    const one = await readsFor(0);
    const many = await readsFor(100);
    assert.equal(one.members, 1);
    assert.equal(many.members, 101);
    // The daemon's own threads and the worker: a few dozen reads, with hundreds of processes around.
    assert.ok(one.reads < 40, `${one.reads} reads for a tree of 1 on a machine of ${machine} processes`);
    // Per added member: its threads' children and its stat (uids are read once per process life).
    const perMember = (many.reads - one.reads) / 100;
    assert.ok(perMember >= 2 && perMember <= 4, `${perMember} reads per added member`);
  });

  test('reaps zombies it adopted while every child child_process spawned keeps its exit status', async () => {
    // (Earlier tests' killed trees are reaped meanwhile too: only these orphans exit with 5.)
    reaped.length = 0;
    // Each child leaves an orphan that exits with 5 (adopted by us, then a zombie) and exits itself
    // with its own code: if a reap took one of these children, Node would never report its exit.
    const children = Array.from({ length: 40 }, (_, i) => {
      const child = spawn('sh', ['-c', `(sh -c 'exit 5' &); exit ${i % 7}`], { stdio: 'ignore' });
      return { want: i % 7, exit: once(child, 'exit') as Promise<[number | null, string | null]> };
    });
    const codes = await Promise.all(children.map(async (c) => (await c.exit)[0]));
    assert.deepEqual(codes, children.map((c) => c.want));
    await waitFor(() => {
      walker.workerTree(identityOf(null));
      return reaped.filter((r) => r.code === 5).length === 40 && zombieChildren().length === 0;
    }, `40 orphans reaped, no zombie child left (reaped ${reaped.length}, zombies ${zombieChildren()})`);
  });

  test('a walk in which a process of the worker’s was first seen dead is walked again', async () => {
    // The tree itself is real; that a member dies between two reads of one walk is steered: this
    // table shows one member as a zombie at its first stat read (the kernel cannot be made to).
    const worker = spawnWorker('sleep 1000 & echo $!; wait');
    const [kid] = (await lines(worker, 1)).map(Number) as [number];
    try {
      class DyingTable extends CountingTable {
        dieOnce = true;
        override read(pid: number): ProcessInfo | null {
          const p = super.read(pid);
          if (p === null || pid !== kid || !this.dieOnce) return p;
          this.dieOnce = false;
          return { ...p, state: 'Z' };
        }
      }
      const dying = new DyingTable();
      const own = new DescendantWalker({ table: dying, registry, reap: () => null });
      const tree = own.workerTree(identityOf(worker));
      assert.equal(tree.conclusive, true, 'the second pass saw every member alive');
      assert.deepEqual(tree.members.map((p) => p.pid).sort((a, b) => a - b), [worker.pid!, kid].sort((a, b) => a - b));
      assert.equal(dying.counts.childrenOf >= 2 * 3, true, `walked twice: ${JSON.stringify(dying.counts)}`);
      assert.ok(WALK_MAX_PASSES >= 2);
    } finally {
      await endGroup(worker);
    }
  });

  test('a stop never calls the tree gone from an inconclusive walk: it looks again', async () => {
    // A walker stand-in answers "empty, but not conclusive" twice: the stop must look a third time.
    let looks = 0;
    const fake = {
      workerTree: (identity: TreeIdentity) => {
        looks++;
        return { members: [], foreign: [], undecided: [], identity, procs: [], conclusive: looks > 2 };
      },
    } as unknown as DescendantWalker;
    const report = await stopTree({ table, identity: identityOf(null), graceMs: 5000, walker: fake });
    assert.deepEqual(report.survivors, []);
    assert.ok(looks >= 3, `tree called gone after ${looks} looks`);
  });
});
