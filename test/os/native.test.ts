// The native helper for real (issue #16): a subreaper adopts an orphaned grandchild and reaps it,
// pidfds signal exactly the process they were opened on, and failures carry Node's error fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { loadNative, NO_NATIVE_ENV, type NativeHelper } from '../../src/os/native.js';
import { isAlive } from '../helpers/daemon.js';

function helper(): NativeHelper {
  const load = loadNative({});
  assert.ok(load.loaded, `the native helper did not load: ${load.loaded ? '' : load.reason}`);
  return load.helper;
}

const NATIVE_MODULE = fileURLToPath(new URL('../../src/os/native.js', import.meta.url));

test('npm install built the helper, and the test environment variable makes it absent', () => {
  const load = loadNative({});
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  assert.match(load.path, /build\/Release\/autopilotd_native\.node$/);
  assert.deepEqual(loadNative({ [NO_NATIVE_ENV]: '1' }), { loaded: false, reason: `disabled by ${NO_NATIVE_ENV}=1` });
});

test('a child subreaper adopts its orphaned grandchild and reaps it, not init or the test runner', async () => {
  // In a child node process: the test runner itself must not become a subreaper.
  const script = `
    import { loadNative } from ${JSON.stringify(NATIVE_MODULE)};
    import { execFileSync } from 'node:child_process';
    import { readFileSync } from 'node:fs';
    const native = loadNative({});
    if (!native.loaded) throw new Error(native.reason);
    const n = native.helper;
    n.setChildSubreaper();
    // sh starts sleep in the background and exits at once: sleep is orphaned.
    const orphan = Number(execFileSync('sh', ['-c', 'sleep 300 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
    const stat = readFileSync('/proc/' + orphan + '/stat', 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const before = n.reap(orphan);
    const fd = n.pidfdOpen(orphan);
    const sent = n.pidfdSendSignal(fd, 'SIGKILL');
    let reaped = null;
    const deadline = Date.now() + 20000;
    while (reaped === null && Date.now() < deadline) {
      reaped = n.reap(orphan);
      if (reaped === null) await new Promise((r) => setTimeout(r, 10));
    }
    const after = n.pidfdSendSignal(fd, 'SIGTERM');
    let again;
    try { n.reap(orphan); } catch (err) { again = { code: err.code, errno: err.errno, syscall: err.syscall }; }
    console.log(JSON.stringify({ self: process.pid, orphan, ppid, before, sent, reaped, after, again }));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  const [code] = await once(child, 'close') as [number | null];
  assert.equal(code, 0, err);
  const r = JSON.parse(out) as Record<string, unknown> & { self: number; orphan: number };
  assert.equal(r.ppid, r.self, 'the orphan was re-parented to the subreaper');
  assert.notEqual(r.ppid, process.pid);
  assert.equal(r.before, null, 'reap() of a running child is null');
  assert.equal(r.sent, 'sent');
  assert.deepEqual(r.reaped, { pid: r.orphan, code: null, signal: 'SIGKILL' });
  assert.equal(r.after, 'gone', 'the pidfd of a reaped process answers ESRCH');
  assert.deepEqual(r.again, { code: 'ECHILD', errno: -10, syscall: 'waitpid' });
  assert.equal(isAlive(r.orphan), false);
});

test('pidfdSendSignal signals the process the fd was opened on, and ESRCH once it is gone', async (t) => {
  const n = helper();
  const target = spawn('sleep', ['300'], { stdio: 'ignore' });
  const bystander = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.after(() => {
    target.kill('SIGKILL');
    bystander.kill('SIGKILL');
  });
  await Promise.all([once(target, 'spawn'), once(bystander, 'spawn')]);
  const fd = n.pidfdOpen(target.pid!);
  assert.ok(fd !== null && fd > 2);
  try {
    const exited = once(target, 'exit');
    assert.equal(n.pidfdSendSignal(fd, 'SIGTERM'), 'sent');
    assert.deepEqual(await exited, [null, 'SIGTERM']);
    assert.ok(isAlive(bystander.pid!), 'the other process is untouched');
    // Node has reaped it by its exit event: the pid may already name another process, the fd never does.
    assert.equal(n.pidfdSendSignal(fd, 0), 'gone');
  } finally {
    closeSync(fd);
  }
});

test('failures are thrown as Node throws them: code, errno, syscall, path', () => {
  const n = helper();
  assert.throws(() => n.notify('/nonexistent-dir/notify.sock', 'READY=1'), {
    code: 'ENOENT', errno: -2, syscall: 'sendto', path: '/nonexistent-dir/notify.sock',
    message: 'sendto ENOENT (No such file or directory) /nonexistent-dir/notify.sock',
  });
  assert.throws(() => n.notify(`/${'x'.repeat(120)}`, 'READY=1'), { code: 'ENAMETOOLONG', syscall: 'sendto' });
  assert.throws(() => n.notify('@', 'READY=1'), { code: 'EINVAL' });
  assert.throws(() => n.notify(42 as unknown as string, 'READY=1'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  // pid 1 is never the test runner's child.
  assert.throws(() => n.reap(1), { code: 'ECHILD', errno: -10, syscall: 'waitpid' });
  assert.throws(() => n.pidfdSendSignal(-1, 0), { code: 'EBADF', syscall: 'pidfd_send_signal' });
  assert.throws(() => n.pidfdSendSignal(0, 'SIGNOPE' as NodeJS.Signals), TypeError);
});

test('pidfdOpen of a pid no process has is null', () => {
  const n = helper();
  // Pids stay below pid_max: that one is never in use.
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  assert.equal(n.pidfdOpen(pidMax), null);
});

test('peerCred names the process at the other end of a unix socket, as the kernel recorded it', async (t) => {
  const native = helper();
  const dir = mkdtempSync(join(tmpdir(), 'apd-peercred-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => server.close());
  // A client in another process, so the pid is not simply ours.
  const child = spawn(process.execPath, ['-e', `require('node:net').connect(${JSON.stringify(path)}).on('connect', () => process.stdout.write('up\\n')); setTimeout(() => {}, 60000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = once(child, 'exit');
      child.kill('SIGKILL');
      await gone;
    }
  });
  const accepted = await new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const fd = (accepted as unknown as { _handle: { fd: number } })._handle.fd;
  assert.deepEqual(native.peerCred(fd), { pid: child.pid, uid: process.getuid!(), gid: process.getgid!() });
  accepted.destroy();
  assert.throws(() => native.peerCred(-1), { code: 'EBADF', syscall: 'getsockopt' });
});
