// What the daemon and its worker keep of the process that started them (issue #14, item 9): no
// descriptor beyond 0-2 reaches the worker, the daemon closes those the caller's shell left open,
// and a detached daemon leaves the caller's working directory (while a reload still resolves a
// relative --config against it).

import { spawn, type StdioOptions } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CLI, ForegroundDaemon, cleanEnv, runCli } from '../helpers/daemon.js';
import { sandbox, type Sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

/** Where the caller's extra descriptors sit: one below 16, which Node marks O_CLOEXEC itself, two above. */
const LOW_FD = 9;
const HIGH_PIPE_FD = 100;
const HIGH_FILE_FD = 101;

/** fd number -> what it points at, for every open descriptor of `pid`. */
function descriptors(pid: number): Map<number, string> {
  const found = new Map<number, string>();
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      found.set(Number(name), readlinkSync(`/proc/${pid}/fd/${name}`));
    } catch {
      // closed between the listing and the look
    }
  }
  return found;
}

/**
 * Runs the CLI as a shell with stray descriptors would: a file open at LOW_FD and HIGH_FILE_FD and a
 * pipe at HIGH_PIPE_FD, none of them close-on-exec. `pipeClosed` turns true once nobody but us holds
 * the pipe any more (EOF): what a `$(...)` or a build tool waiting on it needs.
 */
function runWithStrayFds(box: Sandbox, args: string[], cwd: string): { child: ReturnType<typeof spawn>; marker: string; pipeClosed: () => boolean } {
  const marker = join(box.dir, 'stray-descriptor');
  const fileFd = openSync(marker, 'w');
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  for (let fd = 3; fd <= HIGH_FILE_FD; fd += 1) stdio.push('ignore');
  stdio[LOW_FD] = fileFd;
  stdio[HIGH_PIPE_FD] = 'pipe';
  stdio[HIGH_FILE_FD] = fileFd;
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...cleanEnv(), ...box.env() }, stdio });
  closeSync(fileFd);
  let closed = false;
  const pipe = (child.stdio as unknown as Readable[])[HIGH_PIPE_FD]!;
  pipe.on('end', () => (closed = true));
  pipe.on('error', () => (closed = true));
  pipe.resume();
  return { child, marker, pipeClosed: () => closed };
}

function output(child: ReturnType<typeof spawn>): { text: () => string; exited: Promise<number | null> } {
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c));
  child.stderr!.on('data', (c: Buffer) => (text += c));
  return { text: () => text, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

test('a detached daemon keeps no descriptor of the shell that ran start, its worker gets 0-2 only, and it leaves the cwd (#14)', async (t) => {
  const box = sandbox(t);
  // Started from the sandbox dir with a relative --config, as a user in their project would.
  const start = runWithStrayFds(box, ['start', '--config', 'daemon.toml'], box.dir);
  const out = output(start.child);
  assert.equal(await out.exited, 0, out.text());
  const m = /^autopilotd started: pid (\d+), worker pid (\d+)\n$/.exec(out.text());
  assert.ok(m, out.text());
  const [daemonPid, workerPid] = [Number(m[1]), Number(m[2])];
  box.daemonPids.add(daemonPid);

  const worker = descriptors(workerPid);
  assert.deepEqual([...worker.keys()].sort((a, b) => a - b), [0, 1, 2], `worker fds: ${JSON.stringify([...worker])}`);
  assert.equal(worker.get(0), '/dev/null');
  const daemon = descriptors(daemonPid);
  const stray = [...daemon].filter(([fd, target]) => target === start.marker || fd === HIGH_PIPE_FD || fd === HIGH_FILE_FD);
  assert.deepEqual(stray, [], 'the daemon closed what it inherited');
  await waitFor('EOF on the caller\'s pipe: neither daemon nor worker holds it', start.pipeClosed);

  assert.equal(readlinkSync(`/proc/${daemonPid}/cwd`), '/', 'the detached daemon does not pin the caller\'s directory');
  assert.equal(readlinkSync(`/proc/${workerPid}/cwd`), box.dir, 'the worker runs in working_dir as before');

  // A reload still finds the relative --config: it is resolved against the cwd of start, not '/'.
  const reload = await runCli(['reload', '--config', 'daemon.toml'], { cwd: box.dir, env: box.env() });
  assert.equal(reload.code, 0, reload.stderr);
  await box.waitForLog(new RegExp(` configuration reloaded: nothing changed config=${box.configPath.replace(/[.]/g, '\\.')}$`));
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('a foreground daemon closes the high descriptors it inherited, and its worker gets 0-2 only (#14)', async (t) => {
  const box = sandbox(t);
  const run = runWithStrayFds(box, ['start', '--foreground', '--config', box.configPath], box.dir);
  run.child.stdout!.resume();
  const daemon = new ForegroundDaemon(run.child, box.configPath);
  t.after(() => daemon.cleanup());
  const spawned = await daemon.waitForLine(/ worker spawned generation=1 pid=(\d+) /);
  const workerPid = Number(/ pid=(\d+) /.exec(spawned)![1]);

  // Read at its spawn, the worker may be inside its own start (sleep opening locale files): an
  // inherited descriptor stays, one of its own closes, so it gets until the deadline to be 0-2 only.
  let worker = descriptors(workerPid);
  await waitFor(() => `worker fds 0-2 only: ${JSON.stringify([...worker])}`, () => {
    worker = descriptors(workerPid);
    return [...worker.keys()].sort((a, b) => a - b).join() === '0,1,2';
  }, 5000);
  assert.equal(worker.get(0), '/dev/null');
  const own = descriptors(daemon.pid);
  // Piped to the daemon, which must see the output to judge a stall and passes it on (#17).
  for (const fd of [1, 2]) {
    // Node's stdio 'pipe' is a socketpair.
    assert.match(worker.get(fd) ?? '', /^(pipe|socket):\[\d+\]$/, `worker fd ${fd} is a pipe`);
    assert.notEqual(worker.get(fd), own.get(fd), `worker fd ${fd} is not the daemon's own: it goes through the daemon`);
  }
  assert.notEqual(worker.get(1), worker.get(2), 'stdout and stderr are told apart');
  // LOW_FD stays open in the daemon: Node marked it O_CLOEXEC like its own fds (os/inherited-fds.ts).
  assert.equal(own.has(HIGH_PIPE_FD) || own.has(HIGH_FILE_FD), false, `daemon fds: ${JSON.stringify([...own])}`);
  await waitFor('EOF on the caller\'s pipe: neither daemon nor worker holds it', run.pipeClosed);

  run.child.kill('SIGTERM');
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
});
