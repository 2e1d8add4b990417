// Issue #14, items 6 and 7: the daemon's directories and files against another local user. Each
// case that needs one creates a second user and removes it afterwards; those skip, saying why,
// when we are not root. Every process a test starts is ended by PID.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcTable } from '../../src/os/proc-table.js';
import { isAlive } from '../helpers/daemon.js';
import { createOtherUser, otherUserUnavailable, type OtherUser } from '../helpers/other-user.js';
import { markedPids, sandbox, type Sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const needsOtherUser = otherUserUnavailable() ?? false;

/**
 * A second local user for this test. After it, the processes started through `spawn` are ended by
 * PID and awaited, then the user is removed (userdel refuses a user whose processes still run).
 * Call it before sandbox(t): after-hooks run in order, and the first that throws stops the rest.
 */
function otherUser(t: TestContext): OtherUser {
  const user = createOtherUser();
  const started: ChildProcess[] = [];
  t.after(async () => {
    for (const child of started) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    user.remove();
  });
  return {
    ...user,
    spawn: (argv, opts) => {
      const child = user.spawn(argv, opts);
      started.push(child);
      return child;
    },
  };
}

/** A process of ours ended by PID after the test. */
function track<C extends ChildProcess>(t: TestContext, child: C): C {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/**
 * A third daemon's live worker tree, as a record naming its instance id would make a daemon stop
 * it: a process carrying AUTOPILOTD_INSTANCE=<id>, and a stand-in for that daemon itself.
 */
function liveTree(t: TestContext, box: Sandbox): { instanceId: string; daemon: ChildProcess; worker: ChildProcess } {
  const instanceId = `third-${box.id}`;
  const daemon = track(t, spawn('sleep', ['1000'], { stdio: 'ignore' }));
  const worker = track(t, spawn('sleep', ['1000'], { stdio: 'ignore', env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId } }));
  return { instanceId, daemon, worker };
}

/** Points a path key of the sandbox's config elsewhere (values are written as JSON strings). */
function moveInConfig(box: Sandbox, from: string, to: string): void {
  const text = readFileSync(box.configPath, 'utf8');
  assert.ok(text.includes(JSON.stringify(from)), `${from} is not in ${box.configPath}`);
  writeFileSync(box.configPath, text.replace(JSON.stringify(from), JSON.stringify(to)));
}

/** Files only root may touch, to check that nothing was truncated, appended to or read. */
function rootOnlyFiles(box: Sandbox): { big: string; other: string; contents(): Buffer[] } {
  const dir = join(box.dir, 'root-only');
  mkdirSync(dir, { mode: 0o700 });
  const big = join(dir, 'big');
  const other = join(dir, 'other');
  writeFileSync(big, Buffer.alloc(2 * 1024 * 1024 + 1, 'b'), { mode: 0o600 }); // past the 1 MiB raw-output bound
  writeFileSync(other, 'precious\n', { mode: 0o600 });
  const before = [readFileSync(big), readFileSync(other)];
  return {
    big,
    other,
    contents: () => {
      const now = [readFileSync(big), readFileSync(other)];
      assert.equal(now[0]!.length, before[0]!.length, `${big} keeps its size`);
      assert.ok(now[0]!.equals(before[0]!), `${big} keeps its content`);
      assert.equal(now[1]!.toString(), before[1]!.toString(), `${other} keeps its content`);
      return now;
    },
  };
}

/** The CLI's exit code and stderr for each command line, every one of which must refuse with 78. */
async function assertAllRefuse(box: Sandbox, commands: string[][], message: RegExp): Promise<void> {
  for (const args of commands) {
    const r = await box.cli(args);
    assert.equal(r.code, 78, `${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '', `${args.join(' ')} printed nothing on stdout`);
  }
  assert.deepEqual(box.processes(), [], 'nothing was started');
}

/** "<config>:<line>:1:", where a problem of the key set on the line starting with `prefix` is reported. */
function where(box: Sandbox, prefix: string): string {
  const line = readFileSync(box.configPath, 'utf8').split('\n').findIndex((l) => l.startsWith(prefix)) + 1;
  assert.ok(line > 0, `no line starting with ${prefix} in ${box.configPath}`);
  return `${box.configPath}:${line}:1:`;
}

const START_AND_CHECK = [['start'], ['start', '--foreground'], ['config', 'check']];

function recordText(pid: number, instanceId: string, startTicks: number): string {
  return JSON.stringify({ pid, instance_id: instanceId, started_at: new Date().toISOString(), start_ticks: startTicks, worker: null });
}

test('a record whose daemon still runs is never acted on: the tree it names lives on (issue #14, item 7)', async (t) => {
  const box = sandbox(t);
  const third = liveTree(t, box);
  await waitFor('the third tree to run', () => markedPids(third.instanceId).length === 1);
  const startTicks = new ProcTable().read(third.daemon.pid!)!.startTimeTicks;
  writeFileSync(`${box.pidFile}.instance`, recordText(third.daemon.pid!, third.instanceId, startTicks), { mode: 0o600 });

  // start returns once the worker spawned, which comes after any orphan stop would have finished.
  await box.start();
  assert.deepEqual(markedPids(third.instanceId), [third.worker.pid], 'the third tree was not stopped');
  assert.ok(isAlive(third.daemon.pid!));
  assert.match(box.log(), new RegExp(`WARN  the previous daemon named by the pid file is still alive; leaving its worker tree alone instance=${third.instanceId} previous_pid=${third.daemon.pid}`));
  assert.doesNotMatch(box.log(), /worker tree of a previous daemon found/);

  // The files it writes in their place are its own, and nobody else's to read.
  assert.equal(statSync(`${box.pidFile}.instance`).mode & 0o777, 0o600);
  assert.equal(statSync(box.pidFile).mode & 0o777, 0o600);
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('a record another user owns is ignored: nothing it names is stopped (issue #14, item 7)', { skip: needsOtherUser }, async (t) => {
  const other = otherUser(t);
  const box = sandbox(t);
  const third = liveTree(t, box);
  await waitFor('the third tree to run', () => markedPids(third.instanceId).length === 1);
  // The daemon it names is dead, so only the owner check stands between the record and the tree.
  const dead = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => dead.on('exit', resolve));
  const path = `${box.pidFile}.instance`;
  writeFileSync(path, recordText(dead.pid!, third.instanceId, 1), { mode: 0o644 });
  chownSync(path, other.uid, other.gid);

  await box.start();
  assert.deepEqual(markedPids(third.instanceId), [third.worker.pid], 'the third tree was not stopped');
  assert.match(box.log(), new RegExp(`WARN  instance record ignored, no orphaned tree is looked for: ${path} is owned by uid ${other.uid} \\(regular file, mode 0644\\)`));
  assert.equal(statSync(path).uid, process.getuid!(), 'replaced by the daemon\'s own record');
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('logs.dir in a directory another user prepared is refused before anything is written: their links reach no root file (issue #14, item 6)', { skip: needsOtherUser }, async (t) => {
  const other = otherUser(t);
  const box = sandbox(t);
  const targets = rootOnlyFiles(box);
  chmodSync(box.dir, 0o755); // so that the other user can reach the directory given to them
  const shared = join(box.dir, 'shared');
  mkdirSync(shared, { mode: 0o755 });
  chownSync(shared, other.uid, other.gid);
  const logs = join(shared, 'logs');
  for (const argv of [
    ['mkdir', '-m', '0755', logs],
    ['ln', '-s', targets.big, join(logs, 'autopilotd.stderr.log')],
    ['ln', '-s', targets.other, join(logs, 'autopilotd.log')],
  ]) {
    const r = other.run(argv);
    assert.equal(r.status, 0, `${argv.join(' ')} as ${other.name}: ${r.stderr}`);
  }
  moveInConfig(box, box.logDir, logs);

  await assertAllRefuse(box, START_AND_CHECK, new RegExp(
    `^autopilotd: invalid configuration:\\n${where(box, 'dir =')} logs\\.dir: unsafe log directory: ${logs} is under ${shared}, ` +
    `which another user owns \\(directory owned by uid ${other.uid} with mode 0755\\); expected a directory owned by uid 0, not a symbolic link, ` +
    'not writable by group or others, under directories that only root or uid 0 can change\\n$',
  ));
  targets.contents();
});

test('a log file another user owns, writable by all, in our own log directory is refused and not written (issue #14, item 6)', { skip: needsOtherUser }, async (t) => {
  const other = otherUser(t);
  const box = sandbox(t);
  mkdirSync(box.logDir, { mode: 0o700 });
  writeFileSync(box.logPath, 'theirs\n');
  chmodSync(box.logPath, 0o666);
  chownSync(box.logPath, other.uid, other.gid);

  await assertAllRefuse(box, START_AND_CHECK, new RegExp(
    `\\n${where(box, 'dir =')} logs\\.dir: unsafe file in it: ${box.logPath} is owned by uid ${other.uid} \\(regular file, mode 0666\\); ` +
    'expected a regular file owned by uid 0 with one link, not a symbolic link, or none \\(the daemon creates it 0600\\); remove it\\n$',
  ));
  assert.equal(readFileSync(box.logPath, 'utf8'), 'theirs\n');
});

test('links in our own log directory are not followed: the raw-output file is not truncated through one, nor the log appended (issue #14, item 6)', async (t) => {
  const box = sandbox(t);
  const targets = rootOnlyFiles(box);
  mkdirSync(box.logDir, { mode: 0o700 });
  const stderrLog = join(box.logDir, 'autopilotd.stderr.log');
  symlinkSync(targets.big, stderrLog);
  symlinkSync(targets.other, box.logPath);
  await assertAllRefuse(box, START_AND_CHECK, new RegExp(
    `\\n${where(box, 'dir =')} logs\\.dir: unsafe file in it: ${box.logPath} is a symbolic link to ${targets.other}; .*\\n` +
    `${where(box, 'dir =')} logs\\.dir: unsafe file in it: ${stderrLog} is a symbolic link to ${targets.big}; `,
  ));
  targets.contents();
});

test('an oversized raw-output file of ours is cut through its own fd at start', async (t) => {
  const box = sandbox(t);
  mkdirSync(box.logDir, { mode: 0o700 });
  const stderrLog = join(box.logDir, 'autopilotd.stderr.log');
  writeFileSync(stderrLog, Buffer.alloc(1024 * 1024 + 1, 'x'));
  await box.start();
  assert.equal(statSync(stderrLog).size, 0);
  assert.equal(statSync(stderrLog).mode & 0o777, 0o600);
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('a socket directory that is a symbolic link is refused, even to a private directory (issue #14, item 6)', async (t) => {
  const box = sandbox(t);
  const real = join(box.dir, 'real');
  mkdirSync(real, { mode: 0o700 });
  const runDir = join(box.dir, 'run');
  symlinkSync(real, runDir);
  await assertAllRefuse(box, [...START_AND_CHECK, ['status'], ['stop']], new RegExp(
    `\\n${where(box, 'socket_path =')} socket_path: unsafe socket directory: ${runDir} is a symbolic link to ${real}; expected `,
  ));
  assert.equal(existsSync(join(real, 'd.sock')), false);
});

test('a fake server behind a socket directory another user could replace gets no request: status and stop refuse (issue #14, item 6)', { skip: needsOtherUser }, async (t) => {
  const other = otherUser(t);
  const box = sandbox(t);
  chmodSync(box.dir, 0o755);
  // The mistake: a directory everybody may write, without the sticky bit of /tmp.
  const pub = join(box.dir, 'pub');
  mkdirSync(pub);
  chmodSync(pub, 0o777);
  const runDir = join(pub, 'run');
  moveInConfig(box, box.socketPath, join(runDir, 'd.sock'));

  // The other user's server answers every request with forged data, and logs what it was asked.
  const fakeDir = join(pub, 'fake');
  assert.equal(other.run(['mkdir', '-m', '0755', fakeDir]).status, 0);
  const script = `
    const net = require('node:net');
    net.createServer((c) => {
      let buffered = '';
      c.on('data', (d) => {
        buffered += d;
        for (let i; (i = buffered.indexOf('\\n')) >= 0; buffered = buffered.slice(i + 1)) {
          const req = JSON.parse(buffered.slice(0, i));
          console.log('asked ' + req.cmd);
          c.write(JSON.stringify({ v: 1, id: req.id, ok: true, data: { forged: true, stopped: true } }) + '\\n');
        }
      });
    }).listen(process.argv[1], () => console.log('ready'));
  `;
  const fake = other.spawn([process.execPath, '-e', script, join(fakeDir, 'd.sock')], { cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
  let asked = '';
  fake.stdout!.on('data', (c: Buffer) => (asked += c.toString('utf8')));
  await waitFor(() => `the fake server to listen (output so far: ${JSON.stringify(asked)})`, () => asked.includes('ready'));
  assert.equal(other.run(['ln', '-s', fakeDir, runDir]).status, 0);

  await assertAllRefuse(box, [['status', '--json'], ['stop'], ...START_AND_CHECK], new RegExp(
    `\\n${where(box, 'socket_path =')} socket_path: unsafe socket directory: ${runDir} is under ${pub}, which others can write without the sticky bit \\(directory owned by uid 0 with mode 0777\\); expected `,
  ));
  assert.equal(asked, 'ready\n', 'the fake server was asked nothing');
});

test('a PID file directory another user owns is refused, and the record they put there stops nothing (issue #14, items 6 and 7)', { skip: needsOtherUser }, async (t) => {
  const other = otherUser(t);
  const box = sandbox(t);
  const third = liveTree(t, box);
  await waitFor('the third tree to run', () => markedPids(third.instanceId).length === 1);
  chmodSync(box.dir, 0o755);
  const theirs = join(box.dir, 'theirs');
  mkdirSync(theirs, { mode: 0o755 });
  chownSync(theirs, other.uid, other.gid);
  const pidFile = join(theirs, 'd.pid');
  // As the other user, a record naming the third daemon's instance, as a copy of its 0644 record would.
  const planted = other.run(['sh', '-c', 'cat > "$1"', 'sh', `${pidFile}.instance`], { input: recordText(4_000_000, third.instanceId, 1) });
  assert.equal(planted.status, 0, planted.stderr);
  moveInConfig(box, box.pidFile, pidFile);

  await assertAllRefuse(box, START_AND_CHECK, new RegExp(
    `\\n${where(box, 'pid_file =')} pid_file: unsafe PID file directory: ${theirs} is owned by another user \\(directory owned by uid ${other.uid} with mode 0755\\); expected `,
  ));
  assert.deepEqual(markedPids(third.instanceId), [third.worker.pid], 'the third tree was not stopped');
});

test('directories under /tmp, world-writable but sticky, are accepted; config check creates nothing', async (t) => {
  const box = sandbox(t);
  assert.equal(statSync('/tmp').mode & 0o1777, 0o1777);
  const r = await box.cli(['config', 'check']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `configuration is valid (${box.configPath})\n`);
  assert.equal(existsSync(join(box.dir, 'run')), false);
  assert.equal(existsSync(box.logDir), false);
});
