// The control plane of a real background daemon: the JSON-lines protocol on the wire, and the
// worker commands (restart-worker, stop-worker, start-worker, reload, shutdown), whose replies come
// only once the action is done.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { StatusData } from '../../src/control/protocol.js';
import { isAlive } from '../helpers/daemon.js';
import { exchange, LineClient } from '../helpers/raw-socket.js';
import { argvOf, markedPids, sandbox, SLEEP_WORKER } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

/** One node process with a `sleep` child, taking `exitDelayMs` to exit after SIGTERM. */
function slowStopWorker(exitDelayMs: number): string {
  const script = [
    "require('child_process').spawn('sleep', ['1000'], { stdio: 'ignore' });",
    `process.on('SIGTERM', () => setTimeout(() => process.exit(0), ${exitDelayMs}));`,
    'setInterval(() => {}, 1e6);',
  ].join(' ');
  return `[worker]\ncommand = ${JSON.stringify([process.execPath, '-e', script])}\nstop_timeout_ms = ${exitDelayMs + 3000}\n`;
}

const treeOf = async (instanceId: string, size: number): Promise<number[]> =>
  waitFor(`a worker tree of ${size} processes`, () => {
    const pids = markedPids(instanceId);
    return pids.length === size ? pids : null;
  });

test('the wire protocol: replies echo any id, errors carry a code and a message, pipelined requests are answered in order', async (t) => {
  const box = sandbox(t);
  const { pid } = await box.start();
  const requests = [
    '{"v":1,"id":"a-string","cmd":"status"}',
    '{"v":1,"id":7,"cmd":"fly"}',
    '{"v":2,"id":8,"cmd":"status"}',
    '{"v":1,"cmd":"status"}',
    'not json',
    '{"v":1,"id":9,"cmd":"status","args":[1]}',
    '',
    '{"v":1,"id":{"nested":[1,null]},"cmd":"status","args":{}}',
  ];
  const r = await exchange(box.socketPath, [requests.map((l) => `${l}\n`).join('')]);
  assert.equal(r.trailing, '');
  const replies = r.lines.map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(replies.length, 7, 'one reply per non-blank line');
  assert.deepEqual(Object.keys(replies[0]!).sort(), ['data', 'id', 'ok', 'v']);
  assert.deepEqual([replies[0]!.v, replies[0]!.id, replies[0]!.ok, replies[0]!.data.daemon.pid], [1, 'a-string', true, pid]);
  const errors = replies.slice(1, 6).map((x) => [x.v, x.id, x.ok, Object.keys(x.error).sort().join(), x.error.code]);
  assert.deepEqual(errors, [
    [1, 7, false, 'code,message', 'unknown_command'],
    [1, 8, false, 'code,message', 'unsupported_version'],
    [1, null, false, 'code,message', 'bad_request'],
    [1, null, false, 'code,message', 'bad_json'],
    [1, 9, false, 'code,message', 'bad_request'],
  ]);
  assert.match(replies[1]!.error.message, /unknown command "fly"; known: status, restart-worker, stop-worker, start-worker, reload, shutdown, subscribe, metrics/);
  assert.deepEqual([replies[6]!.id, replies[6]!.ok], [{ nested: [1, null] }, true]);
});

test('restart-worker replies once the old tree is gone and the new worker runs, and counts an operator restart', async (t) => {
  const box = sandbox(t, { body: slowStopWorker(400) });
  const { workerPid } = await box.start();
  const id = box.instanceRecord()!.instance_id;
  const oldTree = await treeOf(id, 2);

  const began = Date.now();
  const r = await box.cli(['restart-worker']);
  const tookMs = Date.now() - began;
  assert.equal(r.code, 0, r.stderr);
  const m = /^worker running, pid (\d+) \(generation 2\)\n$/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const newPid = Number(m[1]);
  assert.deepEqual(oldTree.filter(isAlive), [], 'the old tree is gone when the reply comes');
  assert.ok(isAlive(newPid) && newPid !== workerPid);
  assert.ok(tookMs >= 350, `the reply waited for the worker's 400 ms SIGTERM handling (took ${tookMs} ms)`);

  const s = await box.status();
  assert.deepEqual([s.worker.state, s.worker.pid, s.worker.generation], ['running', newPid, 2]);
  assert.deepEqual(s.restarts, { total: 1, crash: 0, oom: 0, memory: 0, operator: 1, health: 0, hold: 0, recycle: 0 });
  assert.deepEqual([s.worker.last_exit?.code, s.worker.last_exit?.signal], [0, null], 'the old worker exited on its own terms');
  assert.equal(s.worker.consecutive_failures, 0);
});

test('restart-worker during a crash backoff starts the worker at once and forgives the failure', async (t) => {
  const box = sandbox(t, {
    body: '[worker]\ncommand = ["sh", "-c", "[ \\"$AUTOPILOTD_GENERATION\\" = 1 ] && exit 1; exec sleep 1000"]\nstop_timeout_ms = 2000\n'
      + '[restart]\ninitial_backoff_ms = 60000\nmax_backoff_ms = 60000\n',
  });
  await box.start();
  const backoff = await waitFor('the worker to crash into backoff', async () => {
    const s = await box.status();
    return s.worker.state === 'backoff' ? s : null;
  });
  assert.equal(backoff.worker.consecutive_failures, 1);
  assert.deepEqual([backoff.worker.last_exit?.code, backoff.restarts.crash], [1, 1]);
  assert.ok(Date.parse(backoff.worker.next_restart_at!) - Date.now() > 30_000, 'the next start is a minute away');

  const began = Date.now();
  const r = await box.cli(['restart-worker']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^worker running, pid \d+ \(generation 2\)\n$/);
  assert.ok(Date.now() - began < 15_000, 'it did not wait out the backoff');
  const s = await box.status();
  assert.deepEqual([s.worker.state, s.worker.consecutive_failures, s.worker.next_restart_at], ['running', 0, null]);
});

test('stop-worker stops the whole tree and the daemon stays; start-worker starts it again; each is a no-op when already done', async (t) => {
  const box = sandbox(t, { body: `${slowStopWorker(200)}[restart]\ninitial_backoff_ms = 50\n` });
  const { pid } = await box.start();
  const id = box.instanceRecord()!.instance_id;
  const tree = await treeOf(id, 2);

  const stop = await box.cli(['stop-worker']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, 'worker stopped (generation 1)\n');
  assert.deepEqual(tree.filter(isAlive), [], 'the tree is gone when the reply comes');
  assert.deepEqual(markedPids(id), []);
  assert.ok(isAlive(pid), 'the daemon keeps running');
  // A crash would be restarted after 50 ms; a stopped worker is not. 300 ms is plenty to see one.
  await new Promise((r) => setTimeout(r, 300));
  const stopped = await box.status();
  assert.deepEqual([stopped.worker.state, stopped.worker.pid, stopped.worker.next_restart_at, stopped.worker.generation], ['stopped', null, null, 1]);
  assert.deepEqual(markedPids(id), []);

  const again = await box.cli(['stop-worker'], { timeoutMs: 10_000 });
  assert.equal(again.stdout, 'worker stopped (generation 1)\n');

  const start = await box.cli(['start-worker']);
  assert.equal(start.code, 0, start.stderr);
  const m = /^worker running, pid (\d+) \(generation 2\)\n$/.exec(start.stdout);
  assert.ok(m, start.stdout);
  assert.ok(isAlive(Number(m[1])));
  // Already running: the reply comes at once and nothing changes.
  const twice = await box.cli(['start-worker'], { timeoutMs: 10_000 });
  assert.equal(twice.code, 0, twice.stderr);
  assert.equal(twice.stdout, start.stdout);
  assert.equal((await box.status()).worker.pid, Number(m[1]));
});

test('reload applies a new worker command at the next start; an invalid file is refused with invalid_config and the old configuration stays', async (t) => {
  const box = sandbox(t);
  const { pid, workerPid } = await box.start();

  box.writeConfig(SLEEP_WORKER.replace('"1000"', '"2000"'));
  const reload = await box.cli(['reload']);
  assert.equal(reload.code, 0, reload.stderr);
  assert.equal(reload.stdout, `configuration reloaded from ${box.configPath}\n`);
  // The log says what changed and who asked (issue #19).
  await box.waitForLog(/ INFO {2}configuration reloaded: worker\.command changed config=/);
  await box.waitForLog(new RegExp(` INFO {2}operator: reload from pid \\d+ \\(uid ${process.getuid!()}\\)$`));
  let s: StatusData = await box.status();
  assert.deepEqual([s.worker.command, s.worker.pid], [['sleep', '2000'], workerPid], 'the running worker is left alone');
  const restarted = await box.cli(['restart-worker']);
  const pidOf = (out: string): number => Number(/pid (\d+)/.exec(out)![1]);
  assert.deepEqual(argvOf(pidOf(restarted.stdout)), ['sleep', '2000']);

  box.writeConfig(SLEEP_WORKER.replace('"1000"', '"3000"').replace('stop_timeout_ms = 2000', 'stop_timeout_ms = -1'));
  // The CLI reads the same file to find the socket, so it is the first to refuse it (exit 78).
  const bad = await box.cli(['reload']);
  assert.equal(bad.code, 78);
  assert.match(bad.stderr, /^autopilotd: invalid configuration:\n.*worker\.stop_timeout_ms.*-1/);
  const rawReload = async (): Promise<{ ok: boolean; error: { code: string; message: string } }> => {
    const raw = await exchange(box.socketPath, ['{"v":1,"id":1,"cmd":"reload"}\n']);
    return JSON.parse(raw.lines[0]!) as { ok: boolean; error: { code: string; message: string } };
  };
  const invalid = await rawReload();
  assert.deepEqual([invalid.ok, invalid.error.code], [false, 'invalid_config']);
  assert.match(invalid.error.message, /worker\.stop_timeout_ms/);
  box.writeConfig('[worker\ncommand = ["sleep", "3000"]\n');
  const unparsable = await rawReload();
  assert.deepEqual([unparsable.ok, unparsable.error.code], [false, 'invalid_config']);
  assert.match(unparsable.error.message, /daemon\.toml:\d+:\d+/, 'the message points into the file');

  s = await box.status();
  assert.deepEqual([s.daemon.pid, s.worker.command], [pid, ['sleep', '2000']], 'the daemon runs on with the last good configuration');
  // Over the socket: the CLI would refuse the broken file before asking.
  const again = (await box.request('restart-worker')) as { pid: number };
  assert.deepEqual(argvOf(again.pid), ['sleep', '2000'], 'a restart still uses the last good configuration');
  // This very process sent it: SO_PEERCRED names it exactly.
  await box.waitForLog(new RegExp(` operator: restart-worker from pid ${process.pid} \\(uid ${process.getuid!()}\\)$`));
  await box.waitForLog(/configuration reload rejected, keeping the old one: /);
});

test('shutdown over the socket: other actions are refused meanwhile, the reply comes once the tree is gone, then the daemon exits and removes its files', async (t) => {
  const box = sandbox(t, { body: slowStopWorker(1000) });
  const { pid } = await box.start();
  const id = box.instanceRecord()!.instance_id;
  const tree = await treeOf(id, 2);

  const a = await LineClient.connect(box.socketPath);
  t.after(() => a.close());
  a.send({ v: 1, id: 'bye', cmd: 'shutdown' });
  await waitFor('the worker to be stopping', async () => {
    const s = await box.status().catch(() => null);
    return s?.worker.state === 'stopping';
  });
  const b = await LineClient.connect(box.socketPath);
  t.after(() => b.close());
  b.send({ v: 1, id: 2, cmd: 'restart-worker' });
  b.send({ v: 1, id: 3, cmd: 'status' });
  const refused = (await b.next()) as { id: number; ok: boolean; error: { code: string } };
  assert.deepEqual([refused.id, refused.ok, refused.error.code], [2, false, 'shutting_down']);
  const status = (await b.next()) as { ok: boolean; data: StatusData };
  assert.deepEqual([status.ok, status.data.worker.state], [true, 'stopping'], 'status still answers while stopping');

  const reply = await a.next();
  assert.deepEqual(reply, { v: 1, id: 'bye', ok: true, data: { stopped: true } });
  assert.deepEqual(tree.filter(isAlive), [], 'the worker tree is gone when the reply comes');
  await waitFor('the daemon to exit', () => !isAlive(pid));
  for (const path of [box.pidFile, `${box.pidFile}.instance`, box.socketPath]) assert.equal(existsSync(path), false, `${path} removed`);
  await box.waitForLog(/daemon stopped/);
});
