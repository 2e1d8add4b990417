// sd_notify for real (issue #16): datagrams to a filesystem path and to an abstract address reach
// a receiver that checks the sender's pid (SO_PASSCRED), and the systemd-notify fallback delivers
// the same messages when the native helper is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadNative } from '../../src/os/native.js';
import { monotonicUsec, notifierFromEnv, sdMessage, watchdogIntervalMs } from '../../src/os/sd-notify.js';
import { makeTempDir } from '../helpers/daemon.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = makeTempDir();
  t.after(() => dir.cleanup());
  return dir.path;
}

for (const kind of ['path', 'abstract'] as const) {
  test(`through the helper, a datagram to a ${kind} address comes from this process's own pid`, async (t) => {
    const address = kind === 'path' ? join(tempDir(t), 'notify.sock') : `@autopilotd-test-${randomBytes(6).toString('hex')}`;
    const receiver = await NotifyReceiver.start(t, address);
    const errors: string[] = [];
    const notifier = notifierFromEnv({ NOTIFY_SOCKET: address }, { native: loadNative({}), onError: (m) => errors.push(m) });
    assert.ok(notifier !== null);
    assert.equal(notifier.via, 'addon');
    notifier.send(`${sdMessage.ready()}\n${sdMessage.status('worker running, pid 1')}`);
    const d = await receiver.waitFor('READY=1', (x) => x.message.startsWith('READY=1'));
    assert.deepEqual(d, { pid: process.pid, uid: process.getuid!(), message: 'READY=1\nSTATUS=worker running, pid 1' });
    assert.deepEqual(errors, []);
  });
}

test('without the helper, systemd-notify delivers the messages, in order', async (t) => {
  const address = join(tempDir(t), 'notify.sock');
  const receiver = await NotifyReceiver.start(t, address);
  const errors: string[] = [];
  const notifier = notifierFromEnv({ ...process.env, NOTIFY_SOCKET: address }, { native: { loaded: false, reason: 'test' }, onError: (m) => errors.push(m) });
  assert.ok(notifier !== null);
  assert.equal(notifier.via, 'systemd-notify');
  notifier.send(sdMessage.reloading(123n));
  notifier.send(`${sdMessage.ready()}\n${sdMessage.status('two words')}`);
  notifier.send(sdMessage.stopping());
  await receiver.waitFor('STOPPING=1', (d) => d.message === 'STOPPING=1');
  // From systemd-notify's own pid, or ours where it may stamp its parent's (root): never the receiver's.
  assert.deepEqual(receiver.datagrams.map((d) => d.message), ['RELOADING=1\nMONOTONIC_USEC=123', 'READY=1\nSTATUS=two words', 'STOPPING=1']);
  assert.deepEqual(errors, []);
});

test('a failed send is reported once per kind of failure and never thrown', async () => {
  const errors: string[] = [];
  const notifier = notifierFromEnv({ NOTIFY_SOCKET: '/nonexistent-dir/notify.sock' }, { native: loadNative({}), onError: (m) => errors.push(m) });
  for (let i = 0; i < 3; i += 1) notifier!.send(sdMessage.watchdog());
  assert.deepEqual(errors, ['sd_notify to /nonexistent-dir/notify.sock: sendto ENOENT (No such file or directory) /nonexistent-dir/notify.sock']);

  const fallbackErrors: string[] = [];
  const missing = notifierFromEnv({ NOTIFY_SOCKET: '/x.sock', PATH: '/nonexistent' }, { native: { loaded: false, reason: 'test' }, onError: (m) => fallbackErrors.push(m), systemdNotify: '/nonexistent/systemd-notify' });
  missing!.send(sdMessage.watchdog());
  missing!.send(sdMessage.watchdog());
  await new Promise<void>((resolve) => {
    // The queue runs one process at a time: a third message goes out after both failures.
    const check = (): void => (fallbackErrors.length >= 1 ? resolve() : void setTimeout(check, 10));
    check();
  });
  missing!.send(sdMessage.watchdog());
  assert.equal(fallbackErrors.length, 1, fallbackErrors.join('\n'));
  assert.match(fallbackErrors[0]!, /^sd_notify via \/nonexistent\/systemd-notify: spawn \/nonexistent\/systemd-notify ENOENT/);
});

test('no NOTIFY_SOCKET, no notifier', () => {
  assert.equal(notifierFromEnv({}, { native: loadNative({}), onError: () => {} }), null);
  assert.equal(notifierFromEnv({ NOTIFY_SOCKET: '' }, { native: loadNative({}), onError: () => {} }), null);
});

test('the watchdog interval is half of WATCHDOG_USEC, only when meant for this pid', () => {
  const cases: [Record<string, string>, number | null][] = [
    [{}, null],
    [{ WATCHDOG_USEC: '30000000' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4243' }, null],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '' }, 15_000],
    [{ WATCHDOG_USEC: '1000' }, 1],
    [{ WATCHDOG_USEC: '0' }, null],
    [{ WATCHDOG_USEC: '-5' }, null],
    [{ WATCHDOG_USEC: 'soon' }, null],
  ];
  for (const [env, expected] of cases) assert.equal(watchdogIntervalMs(env, 4242), expected, JSON.stringify(env));
});

test('messages: STATUS stays one line; RELOADING carries CLOCK_MONOTONIC in µs', () => {
  assert.equal(sdMessage.status('a\nb\r\nc'), 'STATUS=a b c');
  assert.equal(sdMessage.reloading(5n), 'RELOADING=1\nMONOTONIC_USEC=5');
  const hrUsec = process.hrtime.bigint() / 1000n;
  const usec = monotonicUsec();
  assert.ok(usec >= hrUsec && usec - hrUsec < 60_000_000n);
});
