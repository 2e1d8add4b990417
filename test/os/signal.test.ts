import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { sendSignal, signalGroup, signalIfSame } from '../../src/os/signal.js';
import { isAlive, killGroup, see, statOf, waitFor } from './live-processes.js';

const table = new ProcTable();

function startSleeper() {
  const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, pid: child.pid!, exited };
}

describe('signal', () => {
  test('sendSignal delivers the signal and says "sent"; after the process is reaped it says "gone"', async () => {
    const { pid, exited } = startSleeper();
    try {
      assert.equal(sendSignal(pid, 'SIGTERM'), 'sent');
      const [code, signal] = await exited;
      assert.equal(code, null);
      assert.equal(signal, 'SIGTERM');
      assert.equal(sendSignal(pid, 'SIGTERM'), 'gone');
    } finally {
      killGroup(pid);
    }
  });

  test('signalGroup reaches every process of the group and says "gone" for an empty group', async () => {
    const sh = spawn('sh', ['-c', 'sleep 1000 & sleep 1000 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = once(sh, 'exit');
    try {
      const [line] = (await once(sh.stdout!, 'data')) as [Buffer];
      const member = see(Number(line.toString().trim()));
      assert.equal(signalGroup(sh.pid!, 'SIGKILL'), 'sent');
      await exited;
      await waitFor(() => !isAlive(member), 'the group member to die');
    } finally {
      killGroup(sh.pid!);
      sh.stdout!.destroy();
    }
    // A group whose only process this test has reaped is empty (the other one above waits on init).
    const { pid, exited: sleeperExited } = startSleeper();
    assert.equal(signalGroup(pid, 'SIGKILL'), 'sent');
    await sleeperExited;
    assert.equal(signalGroup(pid, 0), 'gone');
  });

  test('refuses pids that would reach more than one chosen process', () => {
    for (const pid of [0, -1, -5, 1.5, Number.NaN]) assert.throws(() => sendSignal(pid, 0), RangeError, `pid ${pid}`);
    for (const pgid of [0, 1, -3]) assert.throws(() => signalGroup(pgid, 0), RangeError, `pgid ${pgid}`);
  });

  test('EPERM throws an error naming the pid, the signal and errno', async (t) => {
    if (process.getuid!() !== 0) {
      t.skip('needs root to run the probe as another user');
      return;
    }
    // As nobody, probe pid 1 with signal 0 (permission check only, nothing is delivered).
    const moduleUrl = new URL('../../src/os/signal.js', import.meta.url).href;
    const script = `import { sendSignal } from ${JSON.stringify(moduleUrl)};
      try { sendSignal(1, 0); console.log('no error'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message, code: e.code, syscall: e.syscall, errno: e.errno })); }`;
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: '/' }, (err, out) =>
        err ? reject(err) : resolve(out),
      );
    });
    assert.deepEqual(JSON.parse(stdout), {
      name: 'SignalError',
      message: 'kill(pid 1, 0) failed: EPERM (operation not permitted)',
      code: 'EPERM',
      syscall: 'kill',
      errno: -1,
    });
  });

  test('signalIfSame leaves alone a process whose pid now names another start time', async () => {
    const { pid, exited } = startSleeper();
    try {
      const info = table.read(pid);
      assert.ok(info);
      assert.equal(signalIfSame(table, { ...info, startTimeTicks: info.startTimeTicks - 1 }, 'SIGKILL'), 'gone');
      assert.ok(isAlive(see(pid)), 'a reused pid was signalled');
      assert.equal(signalIfSame(table, info, 'SIGKILL'), 'sent');
      const [, signal] = await exited;
      assert.equal(signal, 'SIGKILL');
      assert.equal(signalIfSame(table, info, 'SIGKILL'), 'gone');
    } finally {
      killGroup(pid);
    }
  });

  test('signalIfSame counts a zombie as gone', async () => {
    // The child exits only once its parent has exec'd into `sleep 1000`, which never reaps it; exiting
    // any earlier could let sh reap it first.
    const script = 'p=$$; (while [ "$(cat /proc/$p/comm)" != sleep ]; do sleep 0.01; done) & echo $!; exec sleep 1000';
    const sh = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = once(sh, 'exit');
    try {
      const [line] = (await once(sh.stdout!, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      await waitFor(() => statOf(zombie)?.state === 'Z', 'sleep 0 to become a zombie');
      const info = table.read(zombie);
      assert.ok(info);
      assert.equal(signalIfSame(table, info, 'SIGKILL'), 'gone');
    } finally {
      killGroup(sh.pid!);
      sh.stdout!.destroy();
      await exited;
    }
  });
});
