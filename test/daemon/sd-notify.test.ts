// What a foreground daemon tells its service manager (issue #16), with a notify socket of our own
// standing in for systemd's: READY=1 with the worker running, STATUS= on state changes, WATCHDOG=1,
// RELOADING=1 ... READY=1 on SIGHUP, STOPPING=1 on SIGTERM, and none of it in the worker's env.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/control/client.js';
import type { StatusData } from '../../src/control/protocol.js';
import { daemonInTempDir, makeTempDir, startForeground } from '../helpers/daemon.js';
import { NotifyReceiver, type NotifyDatagram } from '../helpers/notify-receiver.js';
import { MEMORY_WORKER } from '../helpers/memory.js';
import { waitFor } from '../helpers/wait.js';

const envWorker = (dir: string): string =>
  `[worker]\ncommand = ["sh", "-c", "env > ${join(dir, 'worker-env.tmp')} && mv ${join(dir, 'worker-env.tmp')} ${join(dir, 'worker-env')}; exec sleep 1000"]\nstop_timeout_ms = 2000\n`;

const is = (line: string) => (d: NotifyDatagram): boolean => d.message.split('\n').includes(line);

test('a daemon under a service manager reports ready, its state, its liveness, reloads and its stop', async (t) => {
  const notifyDir = makeTempDir();
  t.after(() => notifyDir.cleanup());
  const receiver = await NotifyReceiver.start(t, join(notifyDir.path, 'notify.sock'));
  // Where the worker writes its environment: the daemon's own dir is made after the config is written.
  const envDir = makeTempDir();
  t.after(() => envDir.cleanup());
  const env = { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: '300000' };
  const { daemon, dir } = await daemonInTempDir(t, envWorker(envDir.path), { start: (c) => startForeground(c, [], env) });
  const socketPath = join(dir, 'd.sock');

  const ready = await receiver.waitFor('READY=1', is('READY=1'));
  const status = (await sendRequest(socketPath, 'status', undefined, { timeoutMs: 10_000 })) as StatusData;
  const workerPid = status.worker.pid;
  assert.ok(workerPid !== null);
  assert.match(ready.message, new RegExp(`^READY=1\\nSTATUS=worker running, pid ${workerPid}, gen 1(, |$)`), 'ready once the worker runs');

  // Half of WATCHDOG_USEC apart, from the event loop: several by now or soon.
  await waitFor(() => `three WATCHDOG=1: ${JSON.stringify(receiver.datagrams)}`, () => receiver.datagrams.filter(is('WATCHDOG=1')).length >= 3, 20_000);

  // An operator restart: the STATUS line follows the worker through its states.
  let from = receiver.datagrams.length;
  await sendRequest(socketPath, 'restart-worker', undefined, { timeoutMs: 20_000 });
  await receiver.waitFor('STATUS of generation 2 running', (d) => /^STATUS=worker running, pid \d+, gen 2\b/.test(d.message), from);
  const states = receiver.datagrams.slice(from).map((d) => /^STATUS=worker (\w+)/.exec(d.message)?.[1]).filter((s) => s !== undefined);
  assert.ok(states.includes('stopping'), `STATUS lines after the restart: ${JSON.stringify(states)}`);

  from = receiver.datagrams.length;
  process.kill(daemon.pid, 'SIGHUP');
  const reloading = await receiver.waitFor('RELOADING=1', is('RELOADING=1'), from);
  const usec = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(reloading.message);
  assert.ok(usec, reloading.message);
  // CLOCK_MONOTONIC is one clock for every process of the machine.
  const ours = process.hrtime.bigint() / 1000n;
  assert.ok(ours >= BigInt(usec[1]!) && ours - BigInt(usec[1]!) < 60_000_000n, `MONOTONIC_USEC ${usec[1]} vs ours ${ours}`);
  await receiver.waitFor('READY=1 after the reload', is('READY=1'), receiver.datagrams.indexOf(reloading) + 1);
  await daemon.waitForLine(/configuration reloaded/);

  from = receiver.datagrams.length;
  process.kill(daemon.pid, 'SIGTERM');
  const stopping = await receiver.waitFor('STOPPING=1', is('STOPPING=1'), from);
  assert.equal(stopping.message, 'STOPPING=1\nSTATUS=daemon stopping (SIGTERM): ending the worker tree');
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  await receiver.waitFor('STATUS worker stopped', (d) => d.message.startsWith('STATUS=worker stopped'), from);

  // Through the helper: every datagram from the daemon's own pid, so NotifyAccess=main suffices.
  assert.deepEqual([...new Set(receiver.datagrams.map((d) => d.pid))], [daemon.pid]);
  assert.equal(daemon.matching(/native helper|sd_notify/).length, 0, daemon.lines.join('\n'));
  // Issue #18: said once, which way signals to single processes go.
  assert.equal(daemon.matching(/signals to single worker processes/).length, 1, daemon.lines.join('\n'));
  assert.match(daemon.matching(/signals to single worker processes/)[0]!, /INFO {2}signals to single worker processes go through pidfds: a pid handed out again cannot be hit$/);

  const workerEnv = readFileSync(join(envDir.path, 'worker-env'), 'utf8').split('\n');
  assert.ok(workerEnv.some((l) => l.startsWith('AUTOPILOTD_INSTANCE=')), 'the worker wrote its environment');
  assert.deepEqual(workerEnv.filter((l) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(l)), []);
});

test('without the native helper the daemon still gets ready through systemd-notify and says once what is missing', async (t) => {
  const receiver = await NotifyReceiver.start(t, `@autopilotd-test-${process.pid}-${Date.now()}`);
  // A watchdog meant for another process: this daemon must not answer it.
  const env = { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: '100000', WATCHDOG_PID: '1', _AUTOPILOTD_NO_NATIVE: '1' };
  const { daemon, dir } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n', { start: (c) => startForeground(c, [], env) });
  await receiver.waitFor('READY=1 through systemd-notify', is('READY=1'));
  const status = (await sendRequest(join(dir, 'd.sock'), 'status', undefined, { timeoutMs: 10_000 })) as StatusData;
  assert.deepEqual(status.daemon.native, { loaded: false, reason: 'disabled by _AUTOPILOTD_NO_NATIVE=1' });

  const from = receiver.datagrams.length;
  process.kill(daemon.pid, 'SIGTERM');
  await receiver.waitFor('STOPPING=1', is('STOPPING=1'), from);
  await daemon.exited;
  assert.deepEqual(receiver.datagrams.filter(is('WATCHDOG=1')), [], 'WATCHDOG_PID names another process');
  assert.equal(daemon.matching(/native helper/).length, 1, daemon.lines.join('\n'));
  assert.match(daemon.matching(/native helper/)[0]!, /WARN {2}native helper not loaded \(disabled by _AUTOPILOTD_NO_NATIVE=1\); sd_notify goes through systemd-notify, which needs NotifyAccess=all$/);
  assert.equal(daemon.matching(/sd_notify via/).length, 0, 'systemd-notify delivered every message');
  assert.equal(daemon.matching(/signals to single worker processes/).length, 1, daemon.lines.join('\n'));
  assert.match(daemon.matching(/signals to single worker processes/)[0]!, /go by pid, after a start-time check \(no pidfd: disabled by _AUTOPILOTD_NO_NATIVE=1\)/);
  assert.ok(!existsSync(join(dir, 'd.sock')));
});

test('a memory action leads the STATUS line it caused', async (t) => {
  const receiver = await NotifyReceiver.start(t, `@autopilotd-test-${process.pid}-${Date.now()}`);
  // Only generation 1 grows past worker_max_bytes: one tree-limit restart.
  const body = `
[worker]
command = ${JSON.stringify([process.execPath, MEMORY_WORKER, '--child-generation', '1', '--', '--mib', '250', '--rate-mib-s', '500'])}
stop_timeout_ms = 3000
[memory]
poll_interval_ms = 300
cooldown_ms = 200
min_available_bytes = "2MiB"
critical_threshold_bytes = "1MiB"
worker_max_bytes = "200MiB"
[restart]
initial_backoff_ms = 50
`;
  const { daemon } = await daemonInTempDir(t, body, { start: (c) => startForeground(c, [], { NOTIFY_SOCKET: receiver.address }) });
  const action = await receiver.waitFor('the tree-limit restart in STATUS', (d) => d.message.startsWith('STATUS=memory tree limit ('), 0, 30_000);
  // The tree figure is the decision's; the worker part is whatever the line was sent with: the
  // stop of a tree by walk or cgroup takes a few ms, so by the next turn the worker may be stopping
  // without a pid, or already in backoff (a memory restart counts as a failure).
  assert.match(action.message, /^STATUS=memory tree limit \(tree \d+ MiB over 200 MiB\): restarting the worker; worker (running|stopping|backoff)(, pid \d+)?, gen 1, .*[\d.]+ [MGT]iB available$/);
  await receiver.waitFor('generation 2 running', (d) => /^STATUS=worker running, pid \d+, gen 2\b/.test(d.message), receiver.datagrams.indexOf(action));
  await daemon.waitForLine(/memory: old worker tree gone/);
});
