// The memory controller's part of the cgroup backend, wired as the daemon wires it. This machine's
// cgroup v2 has no controllers (memory is on v1), so the kernel cannot show memory.current,
// memory.events or memory.max here: these tests use a fake cgroupfs directory (a temp dir holding
// those files) as the worker's leaf. The processes are real; only the leaf's files are fake.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { MemoryGuardLoop } from '../../src/daemon/memory-guard-loop.js';
import { WorkerSupervisor } from '../../src/daemon/worker-supervisor.js';
import type { LogEvent } from '../../src/log/events.js';
import { Logger } from '../../src/log/logger.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { TreeTracker } from '../../src/os/tree-tracker.js';
import type { WorkerCgroups } from '../../src/os/worker-cgroups.js';
import { makeTempDir } from '../helpers/daemon.js';
import { waitFor } from '../helpers/wait.js';

const MIB = 1024 * 1024;

/** A fake leaf: the files a cgroup v2 leaf with the memory controller has, as the kernel writes them. */
function fakeLeaf(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  const all = { 'cgroup.procs': '', 'cgroup.events': 'populated 0\nfrozen 0\n', 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n', 'memory.max': 'max\n', ...files };
  for (const [name, text] of Object.entries(all)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Stands in for WorkerCgroups: leaves are fake directories, the spawn runs as it is (no move). */
function fakeCgroups(home: string): WorkerCgroups {
  return {
    home, privateHome: true, memory: true,
    createLeaf: (generation: number) => fakeLeaf(join(home, `worker-${generation}`), {}),
    spawnInto: <T>(_leaf: string, spawn: () => T) => ({ result: spawn(), inLeaf: true }),
    removeLeaf: (leaf: string) => {
      rmSync(leaf, { recursive: true, force: true });
      return true;
    },
  } as unknown as WorkerCgroups;
}

function recordingLogger(): { logger: Logger; events: LogEvent[] } {
  const logger = new Logger({ write: () => {} }, 'plain', 'info');
  const events: LogEvent[] = [];
  logger.subscribe((r) => { if (r.event !== null) events.push(r.event); });
  return { logger, events };
}

test('fake cgroupfs: an exit after oom_kill grew in the leaf restarts with cause oom; memory.max is the backstop', async (t) => {
  const dir = makeTempDir('apd-oom-');
  t.after(() => dir.cleanup());
  const home = join(dir.path, 'cg');
  const leaf = join(home, 'worker-1');
  // The worker plays the kernel: it bumps the leaf's oom_kill before it dies of SIGKILL.
  const config: Config = {
    ...DEFAULTS,
    working_dir: dir.path,
    worker: { ...DEFAULTS.worker, command: ['sh', '-c', `printf 'oom 1\\noom_kill 1\\n' > ${leaf}/memory.events; kill -KILL $$`], stop_timeout_ms: 2000 },
    memory: { ...DEFAULTS.memory, worker_max_bytes: 4096 * MIB },
    restart: { ...DEFAULTS.restart, initial_backoff_ms: 600_000, max_backoff_ms: 600_000 },
    cgroup: { mode: 'auto', backstop_factor: 1.5 },
  };
  const { logger, events } = recordingLogger();
  const supervisor = new WorkerSupervisor(config, {
    logger, table: new ProcTable(), instanceId: randomBytes(9).toString('base64url'), uid: process.getuid!(),
    protectedPids: () => new Set([process.pid]), output: 'log', holdFiles: { parent: dir.path, prefix: 'd.pid.hold-' }, cgroups: () => fakeCgroups(home),
  });
  t.after(async () => {
    await supervisor.stop();
    supervisor.dispose();
  });
  let backstop = '';
  const started = supervisor.start();
  backstop = await waitFor('the leaf with its memory.max', () => {
    try {
      return readFileSync(join(leaf, 'memory.max'), 'utf8');
    } catch {
      return null;
    }
  });
  await started;
  assert.equal(backstop, String(6 * 1024 * MIB), 'memory.max = worker_max_bytes x backstop_factor');
  await waitFor('the restart to be scheduled', () => events.some((e) => e.kind === 'restart-scheduled'), 30_000);
  assert.deepEqual(events.find((e) => e.kind === 'restart-scheduled'), { kind: 'restart-scheduled', cause: 'oom', delayMs: 600_000, consecutiveFailures: 1 });
  assert.equal(supervisor.state.restarts.oom, 1);
  assert.equal(supervisor.state.restarts.crash, 0);
});

test('fake cgroupfs: the tree limit compares memory.current + memory.swap.current of the leaf, not the per-process sum', async (t) => {
  const dir = makeTempDir('apd-cgmem-');
  t.after(() => dir.cleanup());
  const member = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.after(() => {
    if (member.exitCode === null && member.signalCode === null) member.kill('SIGKILL');
  });
  await once(member, 'spawn');
  // One real process of a few MiB in the leaf, which the kernel says holds 150 MiB plus 60 MiB of swap.
  const leaf = fakeLeaf(join(dir.path, 'worker-1'), {
    'cgroup.procs': `${member.pid}\n`, 'cgroup.events': 'populated 1\nfrozen 0\n',
    'memory.current': `${150 * MIB}\n`, 'memory.swap.current': `${60 * MIB}\n`,
  });
  const config: Config = { ...DEFAULTS, memory: { ...DEFAULTS.memory, worker_max_bytes: 200 * MIB } };
  const { logger, events } = recordingLogger();
  const table = new ProcTable();
  let restarts = 0;
  const guard = new MemoryGuardLoop(config, {
    logger, table, uid: process.getuid!(), protectedPids: () => new Set([process.pid]),
    treeIdentity: () => ({ root: null, pgid: null, instanceId: 'none', uid: process.getuid!(), protectedPids: new Set([process.pid]) }),
    workerRunning: () => true,
    restartWorker: async () => { restarts += 1; },
    tree: new TreeTracker(table, { cgroupLeaf: () => leaf }),
    treeLeaf: () => leaf,
  });
  t.after(() => guard.stop());
  guard.start();
  const restart = await waitFor('a memory restart for the tree limit', () => events.find((e) => e.kind === 'memory-restart'), 15_000);
  const r = restart as { availableBytes: number; treeRssBytes: number };
  assert.deepEqual(restart, { kind: 'memory-restart', reason: 'tree_limit', availableBytes: r.availableBytes, treeBytes: 210 * MIB, treeRssBytes: r.treeRssBytes, treeSwapBytes: 0, limitBytes: 200 * MIB });
  assert.ok(r.treeRssBytes < 50 * MIB, 'the figure compared is the leaf\'s, not the RSS sum');
  await waitFor('the restart to be asked for', () => restarts === 1);
  const status = guard.status()!;
  assert.equal(status.tree_processes, 1, 'the members are the leaf\'s');
  assert.ok((status.tree_rss_bytes ?? 0) < 50 * MIB, 'RSS alone would not pass the limit');
});
