// Exactly one daemon and one worker per socket and per pid file: simultaneous starts race for it, a
// second configuration sharing either is refused, nobody else can hold the lock, and a daemon
// killed with SIGKILL leaves a worker tree that the next daemon stops before it spawns its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FIXTURES, isAlive, startForeground, type TreeReport } from '../helpers/daemon.js';
import { collectLines } from '../helpers/lines.js';
import { createOtherUser, otherUserUnavailable } from '../helpers/other-user.js';
import { argvOf, markedPids, sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const STARTS = 10;

test('ten starts at the same moment leave exactly one daemon and one worker, and nine clear refusals', async (t) => {
  const box = sandbox(t);
  const results = await Promise.all(Array.from({ length: STARTS }, () => box.cli(['start'])));
  box.remember();
  const winners = results.filter((r) => r.code === 0);
  const losers = results.filter((r) => r.code !== 0);
  assert.equal(winners.length, 1, `one start succeeds; outputs:\n${results.map((r) => `${r.code}: ${r.stdout}${r.stderr}`).join('\n')}`);
  for (const r of losers) {
    assert.equal(r.code, 1, r.stderr);
    // Refused either by start's own check of the socket or by the daemon's instance lock.
    assert.match(r.stderr, /^autopilotd: (already running \(pid \d+, socket |autopilotd is already running: another daemon holds .*\.lock\n)/);
  }
  const m = /^autopilotd started: pid (\d+), worker pid (\d+)\n$/.exec(winners[0]!.stdout);
  assert.ok(m, winners[0]!.stdout);
  const pid = Number(m[1]);
  const workerPid = Number(m[2]);
  box.daemonPids.add(pid);

  // The refused daemons exit on their own; then the daemon and its worker are all that is left.
  const left = await waitFor(() => `only the daemon and its worker to remain: ${JSON.stringify(box.processes())}`, () => {
    const ps = box.processes();
    return ps.length === 2 ? ps.map((p) => p.pid).sort((a, b) => a - b) : null;
  });
  assert.deepEqual(left, [pid, workerPid].sort((a, b) => a - b));
  assert.deepEqual(argvOf(workerPid), ['sleep', '1000']);
  assert.deepEqual(markedPids(box.instanceRecord()!.instance_id), [workerPid]);
  assert.equal(readFileSync(box.pidFile, 'utf8'), `${pid}\n`);
  assert.equal(box.log().split('\n').filter((l) => / worker spawned /.test(l)).length, 1, 'one worker was ever spawned');
  const status = await box.status();
  assert.deepEqual([status.daemon.pid, status.worker.pid], [pid, workerPid]);
  assert.equal((await box.cli(['stop'])).code, 0);
});


/** The pid report tree-worker.sh writes once its whole tree is up. */
function treeReport(scratch: string, instanceId: string): Promise<TreeReport> {
  const path = join(scratch, instanceId, 'tree.json');
  return waitFor(`the worker tree report in ${path}`, () => {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    return text.endsWith('}\n') ? (JSON.parse(text) as TreeReport) : null;
  });
}

const pidsOf = (r: TreeReport): number[] => [r.worker, ...r.children, r.setsidParent, r.setsid, r.daemon, r.termIgnorer];

test('after kill -9 of the daemon its worker tree lives on; the next start stops that tree before spawning: never two workers', async (t) => {
  const box = sandbox(t);
  const scratch = join(box.dir, 'scratch');
  mkdirSync(scratch);
  box.writeConfig(`[worker]\ncommand = ["sh", ${JSON.stringify(join(FIXTURES, 'recovery-worker.sh'))}, ${JSON.stringify(scratch)}]\nstop_timeout_ms = 1000\n`);

  const first = await box.start();
  const firstId = box.instanceRecord()!.instance_id;
  const firstTree = await treeReport(scratch, firstId);
  const oldPids = [...new Set([first.workerPid, ...pidsOf(firstTree), ...markedPids(firstId)])];
  assert.ok(oldPids.length >= 26, `the first worker's tree: ${oldPids.join(',')}`);

  process.kill(first.pid, 'SIGKILL');
  await waitFor('the killed daemon to be gone', () => !isAlive(first.pid));
  assert.deepEqual(oldPids.filter((p) => !isAlive(p)), [], 'the worker tree outlived its daemon');
  assert.ok(existsSync(box.socketPath) && existsSync(box.pidFile), 'the killed daemon left its socket and pid file behind');
  const holdDirs = (): string[] => readdirSync(dirname(box.pidFile)).filter((n) => n.startsWith(`${basename(box.pidFile)}.hold-`));
  const killedHold = holdDirs();
  assert.equal(killedHold.length, 1, 'and its hold directory, beside the pid file');
  assert.equal((await box.cli(['status'])).code, 3, 'a socket nobody listens on means no daemon');
  // The next worker checks at its start that none of these runs any more.
  writeFileSync(join(scratch, 'old-pids'), `${oldPids.join('\n')}\n`);

  const second = await box.start();
  const secondId = box.instanceRecord()!.instance_id;
  assert.notEqual(secondId, firstId);
  assert.deepEqual(oldPids.filter(isAlive), [], 'the old tree, escapees included, is gone');
  assert.deepEqual(markedPids(firstId), []);
  assert.ok(!holdDirs().includes(killedHold[0]!), `the next daemon removed the killed one's hold directory: ${holdDirs().join(', ')}`);
  const secondTree = await treeReport(scratch, secondId);
  const overlaps = join(scratch, 'overlaps');
  assert.equal(existsSync(overlaps), false, `the new worker saw old processes alive at its start: ${existsSync(overlaps) ? readFileSync(overlaps, 'utf8') : ''}`);
  const newTree = markedPids(secondId);
  assert.ok(newTree.includes(second.workerPid) && pidsOf(secondTree).every((p) => newTree.includes(p)), 'one new worker tree runs');
  assert.deepEqual(newTree.filter((p) => oldPids.includes(p)), []);
  await box.waitForLog(new RegExp(`worker tree of a previous daemon found; stopping it before starting instance=${firstId} previous_pid=${first.pid} `));
  const status = await box.status();
  assert.deepEqual([status.daemon.pid, status.worker.pid, status.worker.generation], [second.pid, second.workerPid, 1]);

  assert.equal((await box.cli(['stop'])).code, 0);
  assert.deepEqual(markedPids(secondId), []);
});

/** `config`'s text with the daemon's socket_path or pid_file (as the sandbox wrote it) replaced. */
function withPath(config: string, from: string, to: string): string {
  const text = readFileSync(config, 'utf8');
  assert.ok(text.includes(JSON.stringify(from)), `${config} sets ${from}`);
  return text.replace(JSON.stringify(from), JSON.stringify(to));
}

test('issue #14 (3a): socket_path edited under a running daemon: start is refused, its worker lives on, status finds it at the old socket and says it moved', async (t) => {
  const box = sandbox(t);
  const { pid, workerPid } = await box.start();
  const newSocket = join(box.dir, 'run2', 'd.sock');
  writeFileSync(box.configPath, withPath(box.configPath, box.socketPath, newSocket));
  const moved = `autopilotd: the daemon (pid ${pid}) listens at ${box.socketPath}; the configuration now says ${newSocket} (restart the daemon to move it)\n`;

  const start = await box.cli(['start']);
  box.remember();
  assert.equal(start.code, 1, start.stdout);
  assert.equal(start.stderr, `${moved}autopilotd: already running (pid ${pid}, socket ${box.socketPath})\n`);
  assert.deepEqual(box.daemons(), [pid], 'start refused before spawning a daemon');
  // The daemon itself refuses too, when run directly: the pid file is locked.
  const foreground = await box.cli(['start', '--foreground'], { timeoutMs: 20_000 });
  assert.equal(foreground.code, 1, foreground.stderr);
  assert.match(foreground.stderr, new RegExp(`autopilotd is already running: another daemon holds ${box.pidFile}\\.lock\\n`));
  assert.equal(existsSync(newSocket), false, 'the refused daemon never listened');

  assert.ok(isAlive(workerPid), 'the running daemon\'s worker was not stopped as an orphan');
  assert.equal(readFileSync(box.pidFile, 'utf8'), `${pid}\n`, 'the pid file still names the running daemon');
  assert.equal(box.instanceRecord()?.pid, pid);
  const status = await box.cli(['status']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(status.stderr, moved);
  assert.match(status.stdout, new RegExp(`: running, pid ${pid}, up [^]*\\n  worker: +running, pid ${workerPid}, generation 1, `));
  assert.equal(box.log().split('\n').filter((l) => / worker spawned /.test(l)).length, 1, 'one worker was ever spawned');

  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stderr, moved);
  assert.equal(stop.stdout, `autopilotd stopped (pid ${pid})\n`);
  assert.ok(!isAlive(pid) && !isAlive(workerPid));
});

test('issue #14 (3b): two configs sharing a pid_file (or a socket_path): the second daemon is refused and the first worker lives on', async (t) => {
  const box = sandbox(t);
  const { pid, workerPid } = await box.start();
  const samePidFile = join(box.dir, 'same-pid-file.toml');
  writeFileSync(samePidFile, withPath(box.configPath, box.socketPath, join(box.dir, 'other', 'd.sock')));
  const sameSocket = join(box.dir, 'same-socket.toml');
  writeFileSync(sameSocket, withPath(box.configPath, box.pidFile, join(box.dir, 'other.pid')));

  const start = await box.cli(['start', '--config', samePidFile], { noConfigFlag: true });
  box.remember();
  assert.equal(start.code, 1, start.stdout);
  assert.match(start.stderr, new RegExp(`autopilotd: already running \\(pid ${pid}, socket ${box.socketPath}\\)\\n$`));
  for (const [config, lock] of [[samePidFile, `${box.pidFile}.lock`], [sameSocket, `${box.socketPath}.lock`]] as const) {
    const r = await box.cli(['start', '--foreground', '--config', config], { noConfigFlag: true, timeoutMs: 20_000 });
    assert.equal(r.code, 1, `${config}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`autopilotd is already running: another daemon holds ${lock}\\n`), config);
  }
  assert.deepEqual(box.daemons(), [pid]);
  assert.ok(isAlive(workerPid), 'the first daemon\'s worker was not stopped as an orphan');
  assert.equal(readFileSync(box.pidFile, 'utf8'), `${pid}\n`);
  assert.equal(existsSync(join(box.dir, 'other.pid')), false);
  const status = await box.status();
  assert.deepEqual([status.daemon.pid, status.worker.pid, status.worker.generation], [pid, workerPid, 1]);
  assert.equal((await box.cli(['stop'])).code, 0);
});

/** The abstract socket name autopilotd used as its lock before issue #14: anyone could bind it. */
function oldAbstractLockName(socketPath: string, uid: number): string {
  return `autopilotd.lock.${uid}.${createHash('sha256').update(socketPath).digest('hex').slice(0, 32)}`;
}

// Run as the other user: binds the old abstract lock name, tries to open and flock the lock files,
// reports what happened as one JSON line, then stays (holding the name) until killed.
const SQUATTER = `
const net = require('node:net');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const [name, ...lockFiles] = process.argv.slice(1);
const server = net.createServer((s) => s.destroy());
server.on('error', (err) => { process.stdout.write(JSON.stringify({ bound: err.code }) + '\\n'); });
server.listen('\\0' + name, () => {
  const opened = lockFiles.map((path) => { try { fs.closeSync(fs.openSync(path, 'a+')); return 'opened'; } catch (err) { return err.code; } });
  const flocked = lockFiles.map((path) => spawnSync('flock', ['-n', path, 'true']).status);
  process.stdout.write(JSON.stringify({ bound: 'ok', opened, flocked }) + '\\n');
});
`;

test('issue #14 (4): another local user cannot squat the lock: root\'s start still works and status answers', async (t) => {
  const why = otherUserUnavailable();
  if (why !== null) return t.skip(why);
  const box = sandbox(t);
  const user = createOtherUser();
  let squatter: ChildProcess | null = null;
  t.after(async () => {
    if (squatter !== null && squatter.exitCode === null && squatter.signalCode === null) {
      const exited = once(squatter, 'exit');
      squatter.kill('SIGKILL'); // by pid: setpriv execs node, so this is the squatter itself
      await exited;
    }
    user.remove();
  });
  const lockFiles = [`${box.pidFile}.lock`, `${box.socketPath}.lock`];
  squatter = user.spawn([process.execPath, '-e', SQUATTER, oldAbstractLockName(box.socketPath, 0), ...lockFiles], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = collectLines(squatter.stdout);
  const report = JSON.parse(await waitFor('the squatter\'s report', () => lines[0])) as { bound: string; opened: string[]; flocked: number[] };
  assert.equal(report.bound, 'ok', 'another user can bind any abstract name');
  assert.deepEqual(report.opened, ['EACCES', 'EACCES'], 'the lock files are out of its reach');
  assert.ok(report.flocked.every((s) => s !== 0), `flock(1) as the other user failed: ${report.flocked.join(',')}`);

  const { pid, workerPid } = await box.start();
  const status = await box.cli(['status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`: running, pid ${pid}, up [^]*\\n  worker: +running, pid ${workerPid}, `));
  assert.ok(squatter.exitCode === null, 'the squatter still holds the old name');
  const stop = await box.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
});

test('a start never stops the tree of a daemon that is still alive, even when the lock files were removed under it', async (t) => {
  const box = sandbox(t);
  const { pid, workerPid } = await box.start();
  const instanceId = box.instanceRecord()!.instance_id;
  // Removed lock files are the one way past the locks: the next daemon locks new files.
  rmSync(`${box.pidFile}.lock`);
  rmSync(`${box.socketPath}.lock`);
  // Sharing the pid file, on another socket: the daemon itself (the CLI would refuse first).
  const other = join(box.dir, 'other.toml');
  writeFileSync(other, readFileSync(box.configPath, 'utf8').replace(JSON.stringify(box.socketPath), JSON.stringify(join(box.dir, 'other', 'd.sock'))));
  const second = await startForeground(other, [], box.env());
  t.after(() => second.cleanup());
  // It decided before it said it was ready.
  const log = second.lines.join('\n');
  assert.equal(second.matching(/worker tree of a previous daemon found/).length, 0, log);
  assert.equal(second.matching(new RegExp(`WARN  the previous daemon named by the pid file is still alive; leaving its worker tree alone instance=${instanceId} previous_pid=${pid}$`)).length, 1, log);
  assert.ok(isAlive(workerPid), 'the live daemon\'s worker was not stopped as an orphan');
  assert.deepEqual(markedPids(instanceId), [workerPid]);

  process.kill(second.pid, 'SIGTERM');
  assert.deepEqual(await second.exited, { code: 0, signal: null });
  assert.deepEqual((await box.status()).worker.pid, workerPid);
  assert.equal((await box.cli(['stop'])).code, 0);
});
