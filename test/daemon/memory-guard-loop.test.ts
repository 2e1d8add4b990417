// The memory guard loop's swap wiring, on real processes with real signals. This machine has no
// swap (free shows 0), so the kernel shows VmSwap 0 for every process: the swap of one member is
// injected by a ProcTable whose swapBytes adds to the real reading. Everything else (the tree, its
// RSS, MemAvailable, the SIGTERM) is real. That a real VmSwap of 0 reads as 0, and that a real
// daemon's status carries tree_swap_bytes, are tested in test/os/proc-table.test.ts and
// test/daemon/status.test.ts.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { MemoryGuardLoop } from '../../src/daemon/memory-guard-loop.js';
import { Logger } from '../../src/log/logger.js';
import { ProcTable, type MemInfo } from '../../src/os/proc-table.js';
import { INSTANCE_ENV, protectedPidsOf, type TreeIdentity } from '../../src/os/process-tree.js';
import { GIB, MIB, memAvailableBytes, startHog } from '../helpers/memory.js';
import { waitFor } from '../helpers/wait.js';
import { killGroup, processKey, uniqueInstanceId } from '../os/live-processes.js';

/**
 * Real readings, plus `extra` bytes of swap for the given pids, and 16 GiB more of swap space
 * (the guard skips the swap reads when SwapTotal is 0).
 */
class SwapInjected extends ProcTable {
  constructor(private readonly extra: Map<number, number>) {
    super();
  }

  override swapBytes(pid: number): number | null {
    const real = super.swapBytes(pid);
    return real === null ? null : real + (this.extra.get(pid) ?? 0);
  }

  override memInfo(): MemInfo {
    const real = super.memInfo();
    return { ...real, swapTotalBytes: real.swapTotalBytes + 16 * GIB };
  }
}

/**
 * A `sleep` carrying the instance marker, leading its own group, ended by that group after the
 * test unless it has exited (its group number may be someone else's by then).
 */
async function markedSleep(t: TestContext, instanceId: string): Promise<{ pid: number; exited: Promise<unknown[]> }> {
  const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore', env: { ...process.env, [INSTANCE_ENV]: instanceId } });
  let done = false;
  const exited = once(child, 'exit').finally(() => (done = true));
  t.after(async () => {
    if (!done) killGroup(child.pid!);
    await exited;
  });
  const table = new ProcTable();
  await waitFor('the sleep to exec', () => table.read(child.pid!)?.comm === 'sleep');
  return { pid: child.pid!, exited };
}

function guardFor(t: TestContext, table: ProcTable, root: number, instanceId: string, memory: Partial<Config['memory']>) {
  const lines: string[] = [];
  const restarts: number[] = [];
  const identity: TreeIdentity = { root: processKey(root), pgid: root, instanceId, uid: process.getuid!(), protectedPids: protectedPidsOf(table, process.pid) };
  const config: Config = { ...DEFAULTS, memory: { ...DEFAULTS.memory, poll_interval_ms: 200, cooldown_ms: 200, kill_grace_ms: 500, ...memory } };
  const loop = new MemoryGuardLoop(config, {
    logger: new Logger({ write: (line) => void lines.push(line) }, 'plain', 'debug'),
    table,
    uid: process.getuid!(),
    protectedPids: () => identity.protectedPids,
    treeIdentity: () => identity,
    workerRunning: () => true,
    restartWorker: async () => void restarts.push(Date.now()),
  });
  t.after(() => loop.stop());
  const lineMatching = (pattern: RegExp): Promise<string> =>
    waitFor(() => `a log line matching ${pattern}\n${lines.join('')}`, () => lines.find((l) => pattern.test(l)), 20_000);
  return { loop, lines, restarts, lineMatching };
}

test('a tree under worker_max_bytes by RSS but over it by RSS + swap is restarted; status and the log give RSS and swap apart', async (t) => {
  const instanceId = uniqueInstanceId('guard-swap-limit');
  const root = (await markedSleep(t, instanceId)).pid;
  const swapped = (await markedSleep(t, instanceId)).pid;
  const table = new SwapInjected(new Map([[swapped, 3 * GIB]]));
  const { loop, restarts, lineMatching } = guardFor(t, table, root, instanceId, {
    worker_max_bytes: 1 * GIB, min_available_bytes: 2 * MIB, critical_threshold_bytes: 1 * MIB,
  });
  loop.start();

  const status = loop.status();
  assert.ok(status, 'a first sample was taken at start');
  assert.equal(status.tree_processes, 2);
  assert.equal(status.tree_swap_bytes, 3 * GIB);
  const realRss = [root, swapped].reduce((sum, pid) => sum + (table.read(pid)?.rssBytes ?? 0), 0);
  assert.ok(status.tree_rss_bytes !== null && status.tree_rss_bytes < 64 * MIB, `tree_rss_bytes is the RSS alone: ${status.tree_rss_bytes} (real ${realRss})`);
  assert.deepEqual(status.top.map((p) => [p.pid, p.swap_bytes]), [[swapped, 3 * GIB], [root, 0]], 'largest by RSS + swap first');

  const restart = await lineMatching(/memory tree_limit: restarting the worker/);
  assert.match(restart, / tree_swap=3072\.0MiB /);
  assert.ok(Number(/ tree_rss=([\d.]+)MiB/.exec(restart)![1]) < 64, restart);
  await waitFor('the restart to have been asked for', () => restarts.length > 0);
  const done = await lineMatching(/memory: old worker tree gone/);
  assert.match(done, / tree_swap_before=3072\.0MiB tree_swap_after=3072\.0MiB$/m, 'the fake restart left the tree as it was');
  assert.equal(loop.status()?.last_action?.swap_bytes, 3 * GIB);
});

test('under low memory the victim is chosen by RSS + swap: a small process mostly swapped out before a larger resident one', async (t) => {
  const instanceId = uniqueInstanceId('guard-swap-victim');
  const root = (await markedSleep(t, instanceId)).pid;
  const victim = await markedSleep(t, instanceId);
  const swapped = victim.pid;
  const big = startHog(['--mib', '100'], { env: { [INSTANCE_ENV]: instanceId } });
  t.after(() => big.kill());
  await big.ready();
  const table = new SwapInjected(new Map([[swapped, 1 * GIB]]));
  assert.ok((table.read(big.pid)?.rssBytes ?? 0) > 100 * MIB, 'the resident hog is over node_kill_threshold_bytes by RSS alone');
  const { loop, lines, restarts, lineMatching } = guardFor(t, table, root, instanceId, {
    // "low" while MemAvailable stays below now + 8 GiB; never critical.
    min_available_bytes: memAvailableBytes() + 8 * GIB, critical_threshold_bytes: 1 * MIB, node_kill_threshold_bytes: 64 * MIB,
    // No second victim during the test: memory stays "low", and the hog would be next.
    cooldown_ms: 600_000,
  });
  loop.start();

  const kill = await lineMatching(/memory low: sending SIGTERM to /);
  assert.match(kill, new RegExp(`SIGTERM to sleep pid=${swapped} rss=[\\d.]+MiB swap=1024\\.0MiB `));
  assert.match(kill, / tree_swap=1024\.0MiB$/m);
  await lineMatching(new RegExp(`memory: victim gone pid=${swapped} .* tree_swap_before=1024\\.0MiB tree_swap_after=0\\.0MiB$`, 'm'));
  assert.deepEqual(await victim.exited, [null, 'SIGTERM'], 'the swapped-out sleep died of the SIGTERM');
  assert.ok(table.read(big.pid) !== null, 'the larger resident hog was not the victim');
  assert.equal(loop.status()?.last_action?.swap_bytes, 1 * GIB);
  assert.deepEqual(restarts, []);
  assert.equal(lines.filter((l) => / sending SIGTERM to /.test(l)).length, 1);
});

test('swap is read for the tree members only, never for every process of a full scan, and not at all without swap space', async (t) => {
  const instanceId = uniqueInstanceId('guard-swap-cost');
  const root = (await markedSleep(t, instanceId)).pid;
  const member = (await markedSleep(t, instanceId)).pid;
  const reads: number[] = [];
  class Counting extends ProcTable {
    swapTotalBytes = 0;
    override swapBytes(pid: number): number | null {
      reads.push(pid);
      return super.swapBytes(pid);
    }

    override memInfo(): MemInfo {
      return { ...super.memInfo(), swapTotalBytes: this.swapTotalBytes };
    }
  }
  const table = new Counting();
  const plenty = { min_available_bytes: 2 * MIB, critical_threshold_bytes: 1 * MIB };
  const swapless = guardFor(t, table, root, instanceId, plenty);
  swapless.loop.start(); // its first sample is a full scan of /proc
  assert.equal(swapless.loop.status()?.tree_swap_bytes, 0);
  swapless.loop.stop();
  assert.deepEqual(reads, [], 'SwapTotal 0: no status read for swap');

  table.swapTotalBytes = 16 * GIB;
  const withSwap = guardFor(t, table, root, instanceId, plenty);
  withSwap.loop.start();
  assert.ok(table.listPids().length > 10, 'the full scan saw more than the tree');
  assert.deepEqual([...reads].sort((a, b) => a - b), [root, member].sort((a, b) => a - b), 'one status read per member');
  assert.equal(withSwap.loop.status()?.tree_swap_bytes, 0, 'the real VmSwap: this machine has no swap');
  assert.equal(reads.length, 4, 'status looks again: two more');
});
