// What the worker's exit means, and the crash context, with real daemons and workers (issue #17): a
// prevent code stops restarts, a hold code waits for the time written to the hold file and is no
// failure, start-worker and restart-worker end a hold, and a crashing worker's stderr tail is in
// `status --json`. Each test waits on the daemon's own log lines, never on a fixed sleep.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StatusData } from '../../src/control/protocol.js';
import { sandbox, type Sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

// A worker that exits before `start` has reported would make `start` say the worker did not start:
// each waits for the test to open this gate (a file in the working directory) once `start` is done.
const GATE = 'while [ ! -e go ]; do sleep 0.05; done; ';

async function startAndOpen(box: Sandbox): Promise<void> {
  await box.start();
  writeFileSync(join(box.dir, 'go'), '');
}

async function statusJson(box: Sandbox): Promise<StatusData> {
  const r = await box.cli(['status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusData;
}

test('a prevent code stops restarts: stopped, no new generation, said in log and status; start-worker starts it again', async (t) => {
  const box = sandbox(t, {
    body: `
[worker]
command = ["sh", "-c", "${GATE}[ \\"$AUTOPILOTD_GENERATION\\" = 1 ] && exit 3; exec sleep 1000"]
stop_timeout_ms = 2000
[restart]
prevent_exit_codes = [3]
initial_backoff_ms = 50
`,
  });
  await startAndOpen(box);
  await box.waitForLog(/worker asked not to be restarted: exit code 3 is in \[restart\]\.prevent_exit_codes/);
  await box.waitForLog(/worker state stopping -> stopped/);
  const s = await statusJson(box);
  assert.equal(s.worker.state, 'stopped');
  assert.equal(s.worker.generation, 1);
  assert.equal(s.worker.next_restart_at, null);
  assert.deepEqual({ code: s.worker.last_exit?.code, asked: s.worker.last_exit?.asked }, { code: 3, asked: 'prevent' });
  assert.equal(s.restarts.total, 0);
  assert.equal(s.worker.consecutive_failures, 0);
  const human = await box.cli(['status']);
  assert.match(human.stdout, /the worker asked not to be restarted \(prevent_exit_codes\)/);

  const started = await box.cli(['start-worker']);
  assert.equal(started.code, 0, started.stderr);
  const after = await statusJson(box);
  assert.equal(after.worker.state, 'running');
  // Generation 2: nothing was spawned between the prevented exit and the operator's start.
  assert.equal(after.worker.generation, 2);
  assert.equal(box.log().split('\n').filter((l) => /worker spawned generation=/.test(l)).length, 2);
});

test('a hold code waits until the time written to the hold file, shows held with its end, and is not a failure', async (t) => {
  // Generation 1 asks to be held 8 s (whole epoch seconds) and prints the time it wrote.
  const box = sandbox(t, {
    body: `
[worker]
command = ["sh", "-c", "${GATE}echo \\"hold file $AUTOPILOTD_HOLD_UNTIL_FILE\\"; [ \\"$AUTOPILOTD_GENERATION\\" = 1 ] || exec sleep 1000; at=$(( $(date +%s) + 8 )); echo \\"until $at\\"; echo $at > \\"$AUTOPILOTD_HOLD_UNTIL_FILE\\"; exit 75"]
stop_timeout_ms = 2000
[restart]
hold_exit_codes = [75]
hold_ms = 600000
hold_max_ms = 3600000
max_consecutive_restarts = 1
`,
  });
  await startAndOpen(box);
  const held = await box.waitForLog(/worker held, not a failure; starting it in \d+ ms/);
  assert.match(held, /basis=file consecutive_failures=0/);
  assert.match(box.log(), /worker asked to be held: exit code 75 is in \[restart\]\.hold_exit_codes; next start \d+ ms after the exit \(the time in its hold file\)/);
  const untilMs = 1000 * Number(/worker\[1\] until (\d+)$/m.exec(box.log())?.[1]);
  assert.ok(Number.isFinite(untilMs), 'the worker printed the time it wrote');
  const s = await statusJson(box);
  assert.equal(s.worker.state, 'held');
  assert.ok(s.worker.next_restart_at !== null);
  // The end shown is the time written (the policy's monotonic clock and the wall clock agree to ms).
  assert.ok(Math.abs(Date.parse(s.worker.next_restart_at) - untilMs) < 1000, `held until ${s.worker.next_restart_at}, written ${new Date(untilMs).toISOString()}`);
  assert.equal(s.worker.consecutive_failures, 0);
  assert.deepEqual({ code: s.worker.last_exit?.code, asked: s.worker.last_exit?.asked }, { code: 75, asked: 'hold' });
  assert.equal(s.restarts.crash, 0);

  const spawned = await box.waitForLog(/worker spawned generation=2 /, 30_000);
  const spawnedAtMs = Date.parse(spawned.slice(0, 24));
  assert.ok(spawnedAtMs >= untilMs - 50, `started again at ${new Date(spawnedAtMs).toISOString()}, before the written ${new Date(untilMs).toISOString()}`);
  const after = await statusJson(box);
  assert.equal(after.worker.state, 'running');
  assert.deepEqual([after.restarts.hold, after.restarts.crash, after.worker.consecutive_failures], [1, 0, 0]);
  assert.doesNotMatch(box.log(), /worker failed/, 'with max_consecutive_restarts = 1 a failure would have shown');

  const holdPath = /worker\[1\] hold file (\S+)$/m.exec(box.log())?.[1];
  assert.ok(holdPath !== undefined, 'the worker was given a hold file');
  assert.ok(holdPath.startsWith(`${box.pidFile}.hold-`), `beside the pid file: ${holdPath}`);
  assert.notEqual(/worker\[2\] hold file (\S+)$/m.exec(box.log())?.[1], holdPath, 'each run has its own path');
  assert.equal(statSync(dirname(holdPath)).mode & 0o777, 0o700, 'the hold files are private');
  const stopped = await box.cli(['stop']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(existsSync(dirname(holdPath)), false, 'the daemon removes its hold directory when it stops');
});

test('start-worker ends a hold at once, and so does restart-worker', async (t) => {
  const box = sandbox(t, {
    body: `
[worker]
command = ["sh", "-c", "${GATE}[ \\"$AUTOPILOTD_GENERATION\\" -le 2 ] && exit 75; exec sleep 1000"]
stop_timeout_ms = 2000
[restart]
hold_exit_codes = [75]
hold_ms = 600000
`,
  });
  await startAndOpen(box);
  await box.waitForLog(/worker held, not a failure; starting it in \d+ ms basis=hold_ms/);
  const s = await statusJson(box);
  assert.equal(s.worker.state, 'held');
  assert.ok(Date.parse(s.worker.next_restart_at!) - Date.now() > 300_000, `a hold of hold_ms ends at ${s.worker.next_restart_at}`);
  const human = await box.cli(['status']);
  assert.match(human.stdout, /worker: +held, generation 1/);
  // The end is kept on the monotonic clock and shown on the wall clock: two asks may differ by a millisecond.
  const shownEnd = /next start: in .*\(held until (\S+)\)/.exec(human.stdout)?.[1];
  assert.ok(shownEnd !== undefined, human.stdout);
  assert.ok(Math.abs(Date.parse(shownEnd) - Date.parse(s.worker.next_restart_at!)) <= 5, `${shownEnd} vs ${s.worker.next_restart_at}`);

  const started = await box.cli(['start-worker']);
  assert.equal(started.code, 0, started.stderr);
  // Generation 2 holds again; restart-worker ends that one.
  await waitFor('generation 2 to be held', async () => {
    const now = await statusJson(box);
    return now.worker.generation === 2 && now.worker.state === 'held';
  }, 30_000);
  const restarted = await box.cli(['restart-worker']);
  assert.equal(restarted.code, 0, restarted.stderr);
  const after = await statusJson(box);
  assert.equal(after.worker.state, 'running');
  assert.equal(after.worker.generation, 3);
  assert.equal(after.restarts.hold, 2);
});

test('the tail of a crashing worker\'s stderr is in status --json and in the human status', async (t) => {
  const box = sandbox(t, {
    body: `
[worker]
command = ["sh", "-c", "${GATE}echo starting; i=1; while [ $i -le 60 ]; do echo \\"err $i\\" >&2; i=$((i+1)); done; printf 'no newline at the end' >&2; exit 9"]
stop_timeout_ms = 2000
crash_context_lines = 5
[restart]
initial_backoff_ms = 600000
max_backoff_ms = 600000
`,
  });
  await startAndOpen(box);
  await box.waitForLog(/restarting worker in 600000 ms/);
  const s = await statusJson(box);
  assert.equal(s.worker.last_exit?.code, 9);
  assert.deepEqual(s.worker.last_exit?.tail, [
    { stream: 'stderr', line: 'err 57', cut: false },
    { stream: 'stderr', line: 'err 58', cut: false },
    { stream: 'stderr', line: 'err 59', cut: false },
    { stream: 'stderr', line: 'err 60', cut: false },
    { stream: 'stderr', line: 'no newline at the end', cut: false },
  ]);
  const human = await box.cli(['status']);
  assert.match(human.stdout, /output before it \(last 5 lines\):\n {4}err\| err 57\n(.*\n){3} {4}err\| no newline at the end\n/);
});
