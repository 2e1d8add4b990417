// `stop` and `restart-worker` on a terminal say what they wait for (issue #19): the plan from the
// status, each tree-stop step as the daemon's event stream tells it, and what a second stop or Ctrl-C
// does; Ctrl-C twice kills the tree at once. Run on a real pseudo-terminal (python3's pty module);
// off a terminal the output stays the one line scripts parse (lifecycle.test.ts).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLI, cleanEnv, isAlive, REPO_ROOT } from '../helpers/daemon.js';
import { hasPty, PTY_MISSING, runOnPty } from '../helpers/pty.js';
import { sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

test('restart-worker on a terminal prints the plan and each step of the tree stop', async (t) => {
  if (!hasPty()) return t.skip(PTY_MISSING);
  // The worker takes 0.3 s to leave on SIGTERM: the steps have time to show.
  const script = "process.on('SIGTERM', () => setTimeout(() => process.exit(0), 300)); setInterval(() => {}, 1e6);";
  const box = sandbox(t, { body: `[worker]\ncommand = ${JSON.stringify([process.execPath, '-e', script])}\nstop_timeout_ms = 4000\n` });
  const { workerPid } = await box.start();
  await waitFor('a memory sample', async () => (await box.status()).memory !== null);
  const env = { ...cleanEnv(), ...box.env() };
  const run = await runOnPty([process.execPath, CLI, 'restart', '--config', box.configPath], { cwd: REPO_ROOT, env });
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`^restarting the worker \\(pid ${workerPid}\\): worker tree: 1 process, SIGTERM, then SIGKILL after 4\\.0s grace\\n`));
  assert.match(run.output, /\n {2}SIGTERM sent to 1 process\n {2}worker tree gone in [\d.]+s\nworker running, pid \d+ \(generation 2\)\n$/);
});

test('stop on a terminal: the plan, the note on a second stop, Ctrl-C twice kills the tree at once', async (t) => {
  if (!hasPty()) return t.skip(PTY_MISSING);
  // `sleep` inherits the ignored SIGTERM: without the force it would take the whole 30 s grace.
  const box = sandbox(t, { body: '[worker]\ncommand = ["sh", "-c", "trap \\"\\" TERM; exec sleep 1000"]\nstop_timeout_ms = 30000\n' });
  const { pid, workerPid } = await box.start();
  await waitFor('a memory sample', async () => (await box.status()).memory !== null);
  const env = { ...cleanEnv(), ...box.env() };
  const began = Date.now();
  const run = await runOnPty([process.execPath, CLI, 'stop', '--config', box.configPath], {
    cwd: REPO_ROOT, env, ctrlCAfter: ['SIGTERM sent to 1 process', 'Ctrl-C again kills the worker tree at once'],
  });
  const tookMs = Date.now() - began;
  assert.equal(run.code, 0, run.output);
  assert.ok(tookMs < 20_000, `forced: ${tookMs} ms, not the 30 s grace\n${run.output}\n${box.log()}`);
  const lines = run.output.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 5), [
    `stopping autopilotd (pid ${pid}): worker tree: 1 process, SIGTERM, then SIGKILL after 30s grace`,
    "  a second 'autopilotd stop', or Ctrl-C twice here, kills the worker tree at once",
    '  SIGTERM sent to 1 process',
    '  Ctrl-C: the daemon carries on stopping; Ctrl-C again kills the worker tree at once',
    '  Ctrl-C again: asking the daemon to kill the worker tree now',
  ]);
  assert.ok(lines.includes('  forced: the worker tree is killed now'), run.output);
  assert.match(run.output, /\n {2}worker tree gone in [\d.]+s\n/);
  assert.match(lines.at(-1)!, new RegExp(`^autopilotd stopped \\(pid ${pid}\\) in [\\d.]+s$`));
  assert.ok(!isAlive(pid) && !isAlive(workerPid));
});
