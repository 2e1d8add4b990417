// The cgroup v2 backend in real daemons, on the real hierarchy (as root; this machine mounts
// cgroup v2 at /sys/fs/cgroup/unified, without controllers: the memory files are tested against a
// fake cgroupfs in cgroup-memory.test.ts). Test daemons share the test runner's cgroup, so each
// makes a private sub-directory in it; the helpers remove what a SIGKILLed one leaves.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { StatusData } from '../../src/control/protocol.js';
import { cgroupProcs, isPopulated, killCgroup } from '../../src/os/cgroup-leaf.js';
import { privateDirPrefix } from '../../src/os/worker-cgroups.js';
import { cgroupOfPid, privateDirsOf, realCgroupUnavailable, testCgroupBase } from '../helpers/cgroup.js';
import {
  cleanEnv, CLI, daemonInTempDir, FIXTURES, ForegroundDaemon, isAlive, makeTempDir, REPO_ROOT, runCli, startForeground, writeConfig,
} from '../helpers/daemon.js';
import { createOtherUser, otherUserUnavailable } from '../helpers/other-user.js';
import { waitFor } from '../helpers/wait.js';

interface Report { worker: number; child: number; escapee: number }

const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);

/** The worker: a child, and a TERM-ignoring escapee that left group, session and parents and cleared its environment. */
function escapeeWorker(scratch: string): string {
  return `[worker]\ncommand = [${JSON.stringify(join(FIXTURES, 'scrubbed-escapee-worker.sh'))}, ${JSON.stringify(scratch)}, "ignore-term"]\nstop_timeout_ms = 500\n`;
}

function scratchDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'apd-esc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function reportOf(daemon: ForegroundDaemon, from = 0): Promise<Report> {
  const line = await waitFor(() => `the worker's report on the daemon's stdout: ${daemon.stdout}`, () => daemon.stdout.split('\n').slice(from).find((l) => l.startsWith('{"worker"')));
  return JSON.parse(line) as Report;
}

async function statusOf(configPath: string): Promise<StatusData> {
  const r = await runCli(['status', '--json', '--config', configPath]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusData;
}

function skipUnlessReal(t: TestContext): boolean {
  const why = realCgroupUnavailable();
  if (why !== null) t.skip(why);
  return why === null;
}

test('a daemon on the cgroup backend: membership is cgroup.procs, and the stop reaches the scrubbed escapee by cgroup.kill; the leaf empties and goes', async (t) => {
  if (!skipUnlessReal(t)) return;
  const { daemon, configPath } = await daemonInTempDir(t, escapeeWorker(scratchDir(t)));
  const report = await reportOf(daemon);
  const status = await statusOf(configPath);
  assert.equal(status.tree?.backend, 'cgroup');
  const leaf = status.tree!.leaf!;
  assert.equal(basename(leaf), 'worker-1');
  assert.equal(dirname(leaf), status.tree!.cgroup);
  assert.ok(basename(status.tree!.cgroup!).startsWith('autopilotd-'), 'a private directory: the test runner\'s cgroup is shared');
  assert.deepEqual(sorted(cgroupProcs(leaf)), sorted([report.worker, report.child, report.escapee]));
  assert.equal(cgroupOfPid(daemon.pid), join(status.tree!.cgroup!, 'daemon'), 'the daemon is in its own leaf');
  assert.match((await runCli(['status', '--config', configPath])).stdout, new RegExp(`\\n {2}tree: +cgroup ${leaf}\\n`));
  await waitFor('the memory guard to count the leaf\'s three processes', async () => (await statusOf(configPath)).memory?.tree_processes === 3);

  const from = daemon.lines.length;
  const r = await runCli(['stop-worker', '--config', configPath]);
  assert.equal(r.code, 0, r.stderr);
  await daemon.waitForLine(/worker tree gone/, 15_000, from);
  const after = daemon.lines.slice(from);
  assert.ok(after.some((l) => new RegExp(`SIGTERM sent to the worker tree pgid=null pids=\\[.*\\b${report.escapee}\\b`).test(l)), after.join('\n'));
  assert.ok(after.some((l) => new RegExp(`SIGKILL sent after \\d+ ms pids=\\[${report.escapee}\\]`).test(l)), `only the TERM-ignoring escapee needed cgroup.kill:\n${after.join('\n')}`);
  assert.ok(!isAlive(report.escapee));
  // Removed only once empty: rmdir succeeds only after the leaf reported populated 0.
  await waitFor('the leaf to be removed', () => !existsSync(leaf));
  assert.equal((await statusOf(configPath)).tree?.leaf, null);

  const home = status.tree!.cgroup!;
  assert.equal((await runCli(['stop', '--config', configPath])).code, 0);
  await daemon.exited;
  assert.ok(!existsSync(home), 'the private directory is removed at exit');
});

test('two daemons at once never share a directory or a leaf', async (t) => {
  if (!skipUnlessReal(t)) return;
  const worker = '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 1000\n';
  const [a, b] = await Promise.all([daemonInTempDir(t, worker), daemonInTempDir(t, worker)]);
  const [sa, sb] = await Promise.all([statusOf(a.configPath), statusOf(b.configPath)]);
  assert.notEqual(sa.tree!.cgroup, sb.tree!.cgroup);
  assert.notEqual(sa.tree!.leaf, sb.tree!.leaf);
  assert.deepEqual(cgroupProcs(sa.tree!.leaf!), [sa.worker.pid]);
  assert.deepEqual(cgroupProcs(sb.tree!.leaf!), [sb.worker.pid]);
  assert.equal(cgroupOfPid(sa.worker.pid!), sa.tree!.leaf);
});

test('a daemon killed with SIGKILL: its successor stops what is left in the old leaf (the escapee too) and removes the old directory', async (t) => {
  if (!skipUnlessReal(t)) return;
  const first = await daemonInTempDir(t, escapeeWorker(scratchDir(t)));
  const report = await reportOf(first.daemon);
  const old = (await statusOf(first.configPath)).tree!;
  first.daemon.child.kill('SIGKILL');
  await first.daemon.exited;
  assert.deepEqual(sorted(cgroupProcs(old.leaf!)), sorted([report.worker, report.child, report.escapee]), 'the orphaned tree lives on in the leaf');

  const second = await startForeground(first.configPath);
  t.after(() => second.cleanup());
  // The marker finds the worker and its child, as without cgroups; the leaf holds the escapee too.
  assert.equal(second.matching(/worker tree of a previous daemon found; stopping it before starting/).length, 1, second.lines.join('\n'));
  const found = second.matching(/cgroup leaf of a previous daemon still holds processes/);
  assert.equal(found.length, 1, second.lines.join('\n'));
  assert.match(found[0]!, new RegExp(`cgroup=${old.leaf} pids=\\[${report.escapee}\\]$`));
  assert.ok(!isAlive(report.escapee) && !isAlive(report.worker) && !isAlive(report.child), 'the whole orphaned tree is gone');
  assert.ok(!existsSync(old.cgroup!), 'the old private directory is removed');
  const now = (await statusOf(first.configPath)).tree!;
  assert.notEqual(now.cgroup, old.cgroup);
  assert.ok(basename(now.cgroup!).startsWith(privateDirPrefix(JSON.parse(/^pid_file = (.*)$/m.exec(readFileSync(first.configPath, 'utf8'))![1]!) as string)), 'same instance, same prefix');
});

test('mode = "off" uses the /proc rules: no cgroup directory, status says proc', async (t) => {
  const { daemon, configPath, dir } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 1000\n[cgroup]\nmode = "off"\n');
  assert.equal(daemon.matching(/worker tree backend: proc \(\[cgroup\] mode = "off"\)/).length, 1);
  const status = await statusOf(configPath);
  const { backend, cgroup, leaf } = status.tree!;
  assert.deepEqual({ backend, cgroup, leaf }, { backend: 'proc', cgroup: null, leaf: null });
  assert.match((await runCli(['status', '--config', configPath])).stdout, /\n {2}tree: +proc \(/);
  assert.deepEqual(privateDirsOf(join(dir, 'd.pid')), []);
  const base = testCgroupBase();
  if (base !== null) assert.equal(cgroupOfPid(status.worker.pid!), base, 'the worker stays in the daemon\'s cgroup');
});

test('mode = "required" where the cgroup is writable (root) starts on the cgroup backend', async (t) => {
  if (!skipUnlessReal(t)) return;
  const { daemon, configPath } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 1000\n[cgroup]\nmode = "required"\n');
  assert.equal(daemon.matching(/worker tree backend: cgroup \(/).length, 1);
  assert.equal((await statusOf(configPath)).tree?.backend, 'cgroup');
});

test('mode = "required" without a writable cgroup (another user, in root\'s cgroup) fails the start with exit 78, naming the key and why; nothing started', async (t) => {
  const why = otherUserUnavailable() ?? realCgroupUnavailable();
  if (why !== null) return t.skip(why);
  const user = createOtherUser();
  const dir = makeTempDir('apd-req-');
  t.after(async () => {
    await waitFor('the other user\'s processes to be gone', () => !readdirSync('/proc').some((p) => /^\d+$/.test(p) && uidOf(p) === user.uid));
    user.remove();
    dir.cleanup();
  });
  chownSync(dir.path, user.uid, user.gid);
  const configPath = writeConfig(dir.path, '[worker]\ncommand = ["sleep", "1000"]\n[cgroup]\nmode = "required"\n[logs]\ndir = ' + JSON.stringify(join(dir.path, 'logs')) + '\n');
  const env = { ...cleanEnv(), HOME: dir.path };
  const lineOfMode = readFileSync(configPath, 'utf8').split('\n').indexOf('mode = "required"') + 1;
  const expected = new RegExp(`^autopilotd: ${escape(configPath)}:${lineOfMode}:1: cgroup\\.mode: "required", but no writable cgroup v2 is available: cannot use a private sub-directory of our cgroup \\S+: mkdir EACCES`, 'm');
  for (const args of [['start'], ['start', '--foreground']]) {
    const r = user.run([process.execPath, CLI, ...args, '--config', configPath], { env, cwd: REPO_ROOT });
    assert.equal(r.status, 78, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(args.length === 1 ? r.stderr : r.stderr.replace(/^\S+ ERROR /m, 'autopilotd: '), expected, r.stderr);
    assert.ok(!existsSync(join(dir.path, 'd.sock')) && !existsSync(join(dir.path, 'd.pid')), 'no socket, no pid file');
  }
  assert.equal(readFileSync(join(dir.path, 'logs', 'autopilotd.log'), 'utf8').includes('worker spawned'), false, 'no worker was spawned');
});

test('alone in its cgroup (as a service with Delegate=yes) the daemon puts its leaves right in it, and leaves only its empty daemon leaf', async (t) => {
  if (!skipUnlessReal(t)) return;
  const own = join(testCgroupBase()!, `apdtest-delegated-${process.pid}`);
  mkdirSync(own);
  const dir = makeTempDir();
  let daemon: ForegroundDaemon | null = null;
  t.after(async () => {
    await daemon?.cleanup();
    for (const leaf of readdirSync(own, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(own, e.name))) {
      if (isPopulated(leaf)) killCgroup(leaf);
      await waitFor('the leaf to empty', () => !isPopulated(leaf));
      rmdirSync(leaf);
    }
    rmdirSync(own);
    dir.cleanup();
  });
  const configPath = writeConfig(dir.path, '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 1000\n');
  // The shell moves itself into the fresh cgroup and execs the daemon: alone there, as systemd starts a service.
  const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', own, process.execPath, CLI, 'start', '--foreground', '--config', configPath], {
    env: cleanEnv(), cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon = new ForegroundDaemon(child, configPath);
  await daemon.waitForLine(/daemon ready/);
  const status = await statusOf(configPath);
  assert.equal(status.tree?.cgroup, own);
  assert.equal(status.tree?.leaf, join(own, 'worker-1'));
  assert.deepEqual(cgroupProcs(join(own, 'daemon')), [daemon.pid]);
  assert.deepEqual(cgroupProcs(own), [], 'no process left in the delegated cgroup itself');
  assert.equal((await runCli(['stop', '--config', configPath])).code, 0);
  await daemon.exited;
  assert.deepEqual(readdirSync(own, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name), ['daemon']);
  assert.equal(isPopulated(join(own, 'daemon')), false);
});

function uidOf(pid: string): number | null {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  } catch {
    return null;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

