// runProbe with real processes (issue #17): the exit code decides, a probe past its timeout is
// killed with its whole process group, and what a finished probe leaves in its group is killed too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcTable } from '../../src/os/proc-table.js';
import { runProbe } from '../../src/os/probe-runner.js';
import { isAlive, killSeen, see, uniqueInstanceId, waitFor, type Seen } from './live-processes.js';

const table = new ProcTable();

function setUp(t: { after(fn: () => void): void }, label: string): { dir: string; env: Record<string, string>; seen: Seen[] } {
  const dir = mkdtempSync(join(tmpdir(), 'autopilotd-probe-'));
  const seen: Seen[] = [];
  t.after(() => {
    for (const s of seen) killSeen(s);
    rmSync(dir, { recursive: true, force: true });
  });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.AUTOPILOTD_INSTANCE = uniqueInstanceId(label);
  return { dir, env, seen };
}

/** Waits for `file` to hold pids, then notes each process (pid and start time). */
async function seePids(file: string, count: number, into: Seen[]): Promise<Seen[]> {
  let pids: number[] = [];
  await waitFor(() => {
    if (!existsSync(file)) return false;
    pids = readFileSync(file, 'utf8').split(/\s+/).filter((w) => w !== '').map(Number);
    return pids.length >= count;
  }, `${count} pids in ${file}`);
  const seen = pids.map((pid) => see(pid));
  into.push(...seen);
  return seen;
}

test('a probe runs in the given directory with the given environment, and its exit code decides', async (t) => {
  const { dir, env } = setUp(t, 'probe-env');
  const ok = await runProbe({ argv: ['sh', '-c', 'pwd; echo "$PROBE_VAR"'], cwd: dir, env: { ...env, PROBE_VAR: 'from-the-worker-env' }, timeoutMs: 30_000 }, table).result;
  assert.equal(ok.ok, true);
  assert.equal(ok.detail, 'exit code 0');
  assert.equal(ok.outputTail, `${dir}\nfrom-the-worker-env`);
  const failed = await runProbe({ argv: ['sh', '-c', 'echo not ready >&2; exit 3'], cwd: dir, env, timeoutMs: 30_000 }, table).result;
  assert.deepEqual([failed.ok, failed.detail, failed.code, failed.timedOut, failed.outputTail], [false, 'exit code 3', 3, false, 'not ready']);
});

test('a probe that hangs is killed with its whole process group at its timeout, and is a failure', async (t) => {
  const { dir, env, seen } = setUp(t, 'probe-hang');
  const pidFile = join(dir, 'pids');
  // The probe and a child of it in its group, both asleep for good.
  const running = runProbe({ argv: ['sh', '-c', `sleep 1000 & echo $$ $! > ${pidFile}; wait`], cwd: dir, env, timeoutMs: 2000 }, table);
  const [probe, child] = await seePids(pidFile, 2, seen);
  assert.equal(probe!.pid, running.pid);
  const result = await running.result;
  assert.equal(result.ok, false);
  assert.equal(result.timedOut, true);
  assert.equal(result.detail, 'timed out after 2000 ms');
  assert.equal(result.signal, 'SIGKILL');
  await waitFor(() => !isAlive(probe!) && !isAlive(child!), 'the probe and its child to be gone');
});

test('what a finished probe leaves running in its group is killed', async (t) => {
  const { dir, env } = setUp(t, 'probe-leftover');
  const pidFile = join(dir, 'pids');
  const running = runProbe({ argv: ['sh', '-c', `sleep 1000 & echo $! > ${pidFile}; exit 0`], cwd: dir, env, timeoutMs: 30_000 }, table);
  const result = await running.result;
  // Killed at the probe's exit, before this test could note it: known by its pid alone.
  const child = Number(readFileSync(pidFile, 'utf8').trim());
  assert.equal(result.ok, true, 'the probe itself passed');
  assert.deepEqual(result.leftoversKilled, [child]);
  await waitFor(() => {
    const p = table.read(child);
    return p === null || p.state === 'Z' || p.comm !== 'sleep';
  }, 'the left-over child to be gone');
});

test('a probe that cannot be spawned is a failure that says why', async (t) => {
  const { dir, env } = setUp(t, 'probe-missing');
  const result = await runProbe({ argv: [join(dir, 'no-such-probe')], cwd: dir, env, timeoutMs: 30_000 }, table).result;
  assert.equal(result.ok, false);
  assert.equal(result.pid, null);
  assert.equal(result.detail, 'spawn failed: ENOENT');
});
