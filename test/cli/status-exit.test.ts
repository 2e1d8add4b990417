// What `status` tells a script by its exit code (issue #19): 0 while the worker is supervised, 4 once
// it is `failed` (a real worker that always exits 1), 3 with no daemon, where `--json` still prints
// an object. Also the `restart` short name and --config before the command, against real daemons.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { StatusData } from '../../src/control/protocol.js';
import { daemonInTempDir, makeTempDir, runCli, writeConfig } from '../helpers/daemon.js';
import { sandbox } from '../helpers/sandbox.js';

test('status exits 4 while the worker is failed, with --json too, and says failed', async (t) => {
  // One failure spends the budget; the retry waits max_backoff_ms, so the state stays failed.
  const { daemon, configPath } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "exit 1"]
[restart]
initial_backoff_ms = 50
max_backoff_ms = 600000
max_consecutive_restarts = 1
`);
  await daemon.waitForLine(/worker state \S+ -> failed/, 30_000);
  const json = await runCli(['status', '--json', '--config', configPath]);
  assert.equal(json.code, 4, json.stderr);
  const status = JSON.parse(json.stdout) as StatusData & { running: boolean };
  assert.equal(status.running, true);
  assert.equal(status.worker.state, 'failed');
  assert.equal(status.worker.last_exit?.code, 1);
  const human = await runCli(['status', '--config', configPath]);
  assert.equal(human.code, 4, human.stderr);
  assert.match(human.stdout, /\n {2}worker: {4}failed, generation 1/);
});

test('status exits 0 while the worker runs; restart restarts it as restart-worker does; --config goes before or after', async (t) => {
  const { daemon, configPath } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n');
  await daemon.waitForLine(/worker spawned generation=1 /);
  const first = await runCli(['--config', configPath, 'status', '--json']);
  assert.equal(first.code, 0, first.stderr);
  const before = JSON.parse(first.stdout) as StatusData & { running: boolean };
  assert.equal(before.running, true);
  assert.equal(before.daemon.pid, daemon.pid);
  assert.equal(before.worker.state, 'running');

  const restart = await runCli(['restart', '--config', configPath]);
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stdout, /^worker running, pid \d+ \(generation 2\)\n$/);
  await daemon.waitForLine(/worker spawned generation=2 /);
  const after = JSON.parse((await runCli(['status', '--json', '--config', configPath])).stdout) as StatusData;
  assert.equal(after.restarts.operator, 1, 'an operator restart, counted as such');
  assert.notEqual(after.worker.pid, before.worker.pid);
  assert.equal(after.worker.generation, 2);
  const human = await runCli(['--config', configPath, 'status']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /restarts: {2}1 \(crash 0, oom 0, memory 0, operator 1/);
});

test('with no daemon, status exits 3 and status --json prints {"running": false, ...} naming where it looked', async (t) => {
  const dir = makeTempDir();
  t.after(() => dir.cleanup());
  const configPath = writeConfig(dir.path, '');
  const socketPath = join(dir.path, 'd.sock');
  for (const argv of [['status', '--json', '--config', configPath], ['--config', configPath, 'status', '--json']]) {
    const r = await runCli(argv);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      running: false,
      reason: `no daemon at ${socketPath}`,
      config_path: configPath,
      socket_path: socketPath,
      pid_file: join(dir.path, 'd.pid'),
    });
    assert.equal(r.stderr, `autopilotd is not running (no daemon at ${socketPath})\n`);
  }
  const human = await runCli(['status', '--config', configPath]);
  assert.equal(human.code, 3);
  assert.equal(human.stdout, '');
});

test('a hung daemon at the noted location costs status and metrics one timeout, not two, and fails them with exit 1', async (t) => {
  const box = sandbox(t);
  const { pid } = await box.start();
  await box.waitForNotedLocation();
  // Stopped, it still accepts connections (the kernel's backlog) and never answers.
  process.kill(pid, 'SIGSTOP');
  const began = Date.now();
  let status, metrics;
  try {
    [status, metrics] = await Promise.all([box.cli(['status'], { timeoutMs: 60_000 }), box.cli(['metrics'], { timeoutMs: 60_000 })]);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const tookMs = Date.now() - began;
  for (const [r, cmd] of [[status, 'status'], [metrics, 'metrics']] as const) {
    assert.equal(r.code, 1, `${cmd}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^autopilotd: ${cmd} failed: no reply to ${cmd} from ${box.socketPath} within 15000 ms \\(timeout\\)\\n$`));
  }
  // One 15 s request timeout each (in parallel); the full way after the quick one made it 30 s.
  assert.ok(tookMs < 27_000, `took ${tookMs} ms`);
});
