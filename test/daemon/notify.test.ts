// [notify] with a real daemon, real workers and real notify commands (issue #17): the command gets
// `failed` with the worker's figures, `recovered` after a stable run, a second `failed` within
// min_interval_ms is suppressed and counted into the next; a hung command is killed with its tree
// while the worker's restarts go on; daemon-stop at shutdown gets its timeout at most; a failing
// command is logged with its output. Every wait is on the daemon's own log lines.
import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { FIXTURES, makeTempDir, startForeground, writeConfig, type ForegroundDaemon } from '../helpers/daemon.js';
import { waitFor } from '../helpers/wait.js';
import { isAlive, killSeen, see, statOf, type Seen } from '../os/live-processes.js';

const WAIT_MS = 30_000;

interface Setup {
  dir: string;
  configPath: string;
  daemon: ForegroundDaemon;
}

async function startDaemon(t: TestContext, body: (dir: string) => string): Promise<Setup> {
  const tmp = makeTempDir('apd-ntf-');
  let daemon: ForegroundDaemon | null = null;
  t.after(async () => {
    await daemon?.cleanup();
    tmp.cleanup();
  });
  const configPath = writeConfig(tmp.path, body(tmp.path));
  daemon = await startForeground(configPath);
  return { dir: tmp.path, configPath, daemon };
}

/** The notifications the recorder wrote so far, one JSON object each. */
function recorded(file: string): Array<Record<string, any>> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return []; // nothing recorded yet
  }
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);
}

/** Pids the hang fixture wrote (its own, then its child's), seen once both are there. */
async function hungPids(file: string): Promise<Seen[]> {
  const pids = await waitFor(`two pids in ${file}`, () => {
    try {
      const found = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
      return found.length >= 2 ? found : undefined;
    } catch {
      return undefined; // not written yet
    }
  }, WAIT_MS);
  return pids.map(see);
}

function groupMembers(pgid: number): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => statOf(pid)?.pgid === pgid && statOf(pid)?.state !== 'Z');
}

const crashingRestart = (maxBackoffMs: number, stableMs: number): string =>
  `[restart]\ninitial_backoff_ms = 100\nmax_backoff_ms = ${maxBackoffMs}\nmax_consecutive_restarts = 1\nstable_after_ms = ${stableMs}\n`;

function recorderConfig(dir: string, minIntervalMs: number): string {
  return [
    '[worker]',
    `command = ["sh", ${JSON.stringify(join(FIXTURES, 'notify-worker.sh'))}, ${JSON.stringify(dir)}]`,
    'stop_timeout_ms = 2000',
    crashingRestart(300, 1000),
    '[notify]',
    `command = ["sh", ${JSON.stringify(join(FIXTURES, 'notify-recorder.sh'))}, ${JSON.stringify(join(dir, 'events.jsonl'))}]`,
    'events = ["failed", "recovered", "daemon-start", "daemon-stop"]',
    `min_interval_ms = ${minIntervalMs}`,
  ].join('\n');
}

test('the notify command receives failed with the figures, recovered after a stable run, is rate-limited per kind, and hears daemon-stop', async (t) => {
  const { dir, configPath, daemon } = await startDaemon(t, (d) => {
    writeFileSync(join(d, 'crash'), '');
    return recorderConfig(d, 600_000);
  });
  const events = join(dir, 'events.jsonl');
  const crash = join(dir, 'crash');

  await daemon.waitForLine(/notify command for failed done took_ms=\d+ suppressed=0/, WAIT_MS);
  const failed = recorded(events).find((e) => e.event === 'failed')!;
  assert.ok(failed, JSON.stringify(recorded(events)));
  assert.equal(failed.host, hostname());
  assert.equal(failed.project, basename(dir));
  assert.equal(failed.daemon_pid, daemon.pid);
  assert.equal(failed.cause, 'crash');
  assert.equal(failed.suppressed, 0);
  assert.ok(!Number.isNaN(Date.parse(failed.time)) && failed.time.endsWith('Z'), failed.time);
  assert.match(failed.message, /^worker failed 1 times in a row \(last exit: code 1\)/);
  assert.equal(failed.figures.consecutive_failures, 1);
  assert.equal(failed.figures.retry_ms, 300);
  assert.deepEqual([failed.figures.last_exit.code, failed.figures.last_exit.signal], [1, null]);
  assert.equal(failed.worker.state, 'failed');
  assert.equal(failed.worker.generation, 1);
  assert.equal(failed.worker.consecutive_failures, 1);
  assert.equal(failed.worker.last_exit.code, 1);
  // The crash context (worker.last_exit.tail) is another part of #17; once it is there it must come along.
  if ('tail' in failed.worker.last_exit) assert.match(JSON.stringify(failed.worker.last_exit.tail), /about to crash/);
  assert.equal(recorded(events).filter((e) => e.event === 'daemon-start').length, 1);

  // A stable run after failed: recovered.
  let from = daemon.lines.length;
  rmSync(crash);
  await daemon.waitForLine(/notify command for recovered done/, WAIT_MS, from);
  const recovered = recorded(events).find((e) => e.event === 'recovered')!;
  assert.deepEqual(recovered.figures, { previous_failures: 1 });
  assert.equal(recovered.worker.state, 'running');

  // Failed again within min_interval_ms: left out and counted.
  from = daemon.lines.length;
  writeFileSync(crash, '');
  await daemon.waitForLine(/notify failed suppressed \(rate-limited\); counted into the next suppressed=1/, WAIT_MS, from);

  // With the limit lifted by a reload, the next failed says how many were left out.
  writeFileSync(configPath, readFileSync(configPath, 'utf8').replace('min_interval_ms = 600000', 'min_interval_ms = 0'));
  from = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  await daemon.waitForLine(/configuration reloaded/, WAIT_MS, from);
  rmSync(crash);
  await daemon.waitForLine(/notify command for recovered done took_ms=\d+ suppressed=0/, WAIT_MS, from);
  from = daemon.lines.length;
  writeFileSync(crash, '');
  await daemon.waitForLine(/notify command for failed done took_ms=\d+ suppressed=1/, WAIT_MS, from);
  const allFailed = recorded(events).filter((e) => e.event === 'failed');
  assert.deepEqual(allFailed.map((e) => e.suppressed), [0, 1]);
  assert.ok(allFailed[1]!.worker.generation > failed.worker.generation);

  daemon.child.kill('SIGTERM');
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  const last = recorded(events).at(-1)!;
  assert.equal(last.event, 'daemon-stop');
  assert.deepEqual(last.figures, { reason: 'SIGTERM' });
  assert.equal(last.worker.state, 'stopped');
});

test('a notify command that hangs is killed with its tree after timeout_ms, and the worker restarts on time meanwhile', async (t) => {
  const { dir, daemon } = await startDaemon(t, (d) => [
    '[worker]',
    'command = ["sh", "-c", "exit 1"]',
    crashingRestart(200, 60_000),
    '[notify]',
    `command = ["sh", ${JSON.stringify(join(FIXTURES, 'notify-hang.sh'))}, ${JSON.stringify(join(d, 'pids'))}]`,
    'events = ["failed"]',
    'timeout_ms = 8000',
  ].join('\n'));
  const [hung, child] = await hungPids(join(dir, 'pids'));
  t.after(() => [hung!, child!].forEach(killSeen));
  assert.equal(statOf(hung!.pid)?.pgid, hung!.pid, 'the command leads its own process group');

  // Restarts go on while the command hangs: the next generations spawn before it is killed.
  await daemon.waitForLine(/worker spawned generation=4 /, WAIT_MS);
  assert.equal(isAlive(hung!), true, 'the command was still running while the worker restarted');

  await daemon.waitForLine(/notify command for failed failed: still running after 8000 ms: its tree was killed$/, WAIT_MS);
  assert.equal(isAlive(hung!), false);
  assert.equal(isAlive(child!), false);
  assert.deepEqual(groupMembers(hung!.pid), []);
  const spawns = daemon.matching(/worker spawned generation=/).length;
  await daemon.waitForLine(new RegExp(`worker spawned generation=${spawns + 1} `), WAIT_MS);
});

test('at shutdown daemon-stop gets timeout_ms at most: a hung command is killed and the daemon exits', async (t) => {
  const { dir, daemon } = await startDaemon(t, (d) => [
    '[worker]',
    'command = ["sleep", "1000"]',
    '[notify]',
    `command = ["sh", ${JSON.stringify(join(FIXTURES, 'notify-hang.sh'))}, ${JSON.stringify(join(d, 'pids'))}]`,
    'events = ["daemon-stop"]',
    'timeout_ms = 3000',
  ].join('\n'));
  daemon.child.kill('SIGTERM');
  const [hung, child] = await hungPids(join(dir, 'pids'));
  t.after(() => [hung!, child!].forEach(killSeen));
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  assert.equal(daemon.matching(/notify command for daemon-stop failed: still running after 3000 ms: its tree was killed$/).length, 1, daemon.lines.join('\n'));
  assert.equal(isAlive(hung!), false);
  assert.equal(isAlive(child!), false);
});

test('a failing notify command is logged in one line with its exit code, and its output after it', async (t) => {
  const { daemon } = await startDaemon(t, () => [
    '[worker]',
    'command = ["sleep", "1000"]',
    '[notify]',
    'command = ["sh", "-c", "read line; echo \\"got $line\\"; echo \\"webhook said: 500\\" >&2; echo \\"retry later\\" >&2; exit 3"]',
    'events = ["daemon-start"]',
  ].join('\n'));
  await daemon.waitForLine(/notify command for daemon-start failed: exited with code 3$/, WAIT_MS);
  const stdout = daemon.matching(/notify command for daemon-start wrote on stdout: /);
  assert.equal(stdout.length, 1);
  assert.match(stdout[0]!, /wrote on stdout: got \{"event":"daemon-start",.*"daemon_pid":\d+/);
  assert.match(daemon.matching(/wrote on stderr:/)[0]!, /wrote on stderr: webhook said: 500\\nretry later$/);
});
