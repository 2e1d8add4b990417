// runNotifyCommand with real processes: stdin delivered, output kept and bounded, exit codes and
// signals reported, a spawn failure is a result, and a command still running at its timeout is
// stopped with its whole tree (a background child included) while another run's tree is left alone.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { NOTIFY_OUTPUT_MAX_BYTES, runNotifyCommand, type NotifyCommandRequest } from '../../src/os/notify-command.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { protectedPidsOf } from '../../src/os/process-tree.js';
import { hasMarker, isAlive, killSeen, see, statOf, uniqueInstanceId, waitFor, type Seen } from './live-processes.js';

const table = new ProcTable();
/** Long enough for a shell on a loaded machine to write its pids before the timeout stops it. */
const SHORT_TIMEOUT_MS = 2000;

function request(argv: string[], extra: Partial<NotifyCommandRequest> = {}): NotifyCommandRequest {
  return {
    argv, cwd: tmpdir(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, marker: uniqueInstanceId('notify'),
    input: '{"event":"failed"}\n', timeoutMs: 30_000, table, uid: process.getuid!(),
    protectedPids: () => protectedPidsOf(table, process.pid),
    ...extra,
  };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'apd-notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Pids a command wrote to `file`, one per line, once it holds `count` of them. */
async function pidsIn(file: string, count: number): Promise<Seen[]> {
  let pids: number[] = [];
  await waitFor(() => {
    try {
      pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return false; // not written yet
    }
    return pids.length >= count;
  }, `${count} pids in ${file}`);
  return pids.map(see);
}

test('the command gets the input on stdin, with the marker in its environment, and its stdout is kept', async () => {
  const req = request(['sh', '-c', 'cat; printf "%s" "$AUTOPILOTD_INSTANCE"'], { input: '{"event":"memory","n":1}\n' });
  const r = await runNotifyCommand(req);
  assert.deepEqual(r.outcome, { kind: 'exited', code: 0 });
  assert.equal(r.stdout.text, `{"event":"memory","n":1}\n${req.marker}`);
  assert.deepEqual(r.stderr, { text: '', droppedBytes: 0 });
  assert.ok(r.pid !== null && r.pid > 0);
});

test('it runs in its own session and process group, in the given directory', async (t) => {
  const dir = tempDir(t);
  const r = await runNotifyCommand(request(['sh', '-c', 'pwd; ps -o pgid= -o sid= -p $$'], { cwd: dir }));
  const [pwd, ids] = r.stdout.text.trim().split('\n');
  assert.equal(pwd, dir);
  assert.deepEqual(ids!.trim().split(/\s+/).map(Number), [r.pid, r.pid]);
  assert.notEqual(r.pid, statOf(process.pid)!.pgid);
});

test('a failing command: its exit code and stderr are reported', async () => {
  const r = await runNotifyCommand(request(['sh', '-c', 'echo "webhook said 500" >&2; exit 3']));
  assert.deepEqual(r.outcome, { kind: 'exited', code: 3 });
  assert.equal(r.stderr.text, 'webhook said 500\n');
});

test('a command killed by a signal is reported by the signal name', async () => {
  const r = await runNotifyCommand(request(['sh', '-c', 'kill -USR1 $$']));
  assert.deepEqual(r.outcome, { kind: 'signalled', signal: 'SIGUSR1' });
});

test('a command that is not there is a spawn failure, not an exception', async () => {
  const r = await runNotifyCommand(request(['/nonexistent/notify-command']));
  assert.deepEqual(r.outcome, { kind: 'spawn-failed', reason: 'spawn /nonexistent/notify-command: ENOENT' });
  assert.equal(r.pid, null);
});

test('a missing working directory is a spawn failure too', async () => {
  const r = await runNotifyCommand(request(['true'], { cwd: '/nonexistent/dir' }));
  assert.equal(r.outcome.kind, 'spawn-failed');
});

test('a command that never reads its stdin is not a failure, even with a large input', async () => {
  const r = await runNotifyCommand(request(['true'], { input: 'x'.repeat(1024 * 1024) }));
  assert.deepEqual(r.outcome, { kind: 'exited', code: 0 });
});

test('output beyond the bound is counted, not kept', async () => {
  const r = await runNotifyCommand(request(['sh', '-c', 'head -c 10000 /dev/zero | tr "\\0" a; head -c 5000 /dev/zero | tr "\\0" b >&2']));
  assert.equal(r.stdout.text, 'a'.repeat(NOTIFY_OUTPUT_MAX_BYTES));
  assert.equal(r.stdout.droppedBytes, 10000 - NOTIFY_OUTPUT_MAX_BYTES);
  assert.equal(r.stderr.text.length, NOTIFY_OUTPUT_MAX_BYTES);
  assert.equal(r.stderr.droppedBytes, 5000 - NOTIFY_OUTPUT_MAX_BYTES);
});

test('a command still running at its timeout is stopped with its tree, a setsid escapee included', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'pids');
  // The main process, a background child in its group, and one that left the group (setsid).
  const script = `sleep 1000 & echo $! >> ${pidFile}; setsid sleep 1000 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`;
  const req = request(['sh', '-c', script], { timeoutMs: SHORT_TIMEOUT_MS });
  const running = runNotifyCommand(req);
  const seen = await pidsIn(pidFile, 3);
  t.after(() => seen.forEach(killSeen));
  // Waited for, not read once: in the middle of an exec (sh to setsid to sleep) environ reads empty.
  for (const s of seen) await waitFor(() => hasMarker(s.pid, req.marker), `pid ${s.pid} to show the marker`);
  const r = await running;
  assert.deepEqual(r.outcome, { kind: 'timed-out', survivors: [] });
  for (const s of seen) assert.equal(isAlive(s), false, `pid ${s.pid} is gone`);
});

test('a command that exited but left a child holding its output runs until that ends, or its timeout', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'pids');
  const req = request(['sh', '-c', `sleep 1000 & echo $! >> ${pidFile}; exit 0`], { timeoutMs: SHORT_TIMEOUT_MS });
  const running = runNotifyCommand(req);
  const [child] = await pidsIn(pidFile, 1);
  t.after(() => killSeen(child!));
  const r = await running;
  assert.equal(r.outcome.kind, 'timed-out');
  assert.equal(isAlive(child!), false);
});

test('a child started with its output elsewhere is left alone once the command has ended', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'pids');
  const r = await runNotifyCommand(request(['sh', '-c', `sleep 1000 >/dev/null 2>&1 & echo $! >> ${pidFile}`], { timeoutMs: 60_000 }));
  const [child] = await pidsIn(pidFile, 1);
  t.after(() => killSeen(child!));
  assert.deepEqual(r.outcome, { kind: 'exited', code: 0 });
  assert.equal(isAlive(child!), true);
});

test("one run's timeout stops its own tree only: another run, with a marker of its own, lives on", async (t) => {
  const dir = tempDir(t);
  const other = runNotifyCommand(request(['sh', '-c', `echo $$ >> ${join(dir, 'other')}; exec sleep 1000`], { timeoutMs: 60_000 }));
  const [otherPid] = await pidsIn(join(dir, 'other'), 1);
  t.after(async () => {
    killSeen(otherPid!);
    await other;
  });
  const running = runNotifyCommand(request(['sh', '-c', `echo $$ >> ${join(dir, 'mine')}; exec sleep 1000`], { timeoutMs: SHORT_TIMEOUT_MS }));
  const [mine] = await pidsIn(join(dir, 'mine'), 1);
  t.after(() => killSeen(mine!));
  assert.equal((await running).outcome.kind, 'timed-out');
  assert.equal(isAlive(mine!), false);
  assert.equal(isAlive(otherPid!), true);
  killSeen(otherPid!);
  assert.deepEqual((await other).outcome, { kind: 'signalled', signal: 'SIGKILL' });
});
