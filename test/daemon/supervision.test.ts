// The supervisor with real daemons and real workers: restart schedule, failed state, whole-tree
// stop on SIGTERM, forced stop on a second SIGINT, spawn failures, restart = "on-failure".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, FIXTURES, cleanEnv, daemonInTempDir, isAlive, makeTempDir, runCli, treeReportPids, writeConfig, type TreeReport } from '../helpers/daemon.js';
import type { StatusData } from '../../src/control/protocol.js';
import { waitFor } from '../helpers/wait.js';
import { killSeen, see, spawnOnPid, statOf } from '../os/live-processes.js';

const timeOf = (line: string): number => Date.parse(line.slice(0, 24));

test('a crashing worker is restarted on the backoff schedule, turns failed, and is still retried', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "exit 3"]
[restart]
initial_backoff_ms = 50
max_backoff_ms = 400
backoff_multiplier = 2.0
max_consecutive_restarts = 4
stable_after_ms = 60000
`);
  // Six spawns: five failures (the fifth past the budget of 4) and a retry after failed.
  await daemon.waitForLine(/worker spawned generation=6 /, 30_000);
  const scheduled = daemon.matching(/restarting worker in \d+ ms/).slice(0, 5);
  const delays = scheduled.map((l) => Number(/in (\d+) ms/.exec(l)![1]));
  assert.deepEqual(delays, [50, 100, 200, 400, 400]);
  assert.ok(daemon.matching(/worker failed 4 times in a row \(last exit: code 3\); still retrying every 400 ms/).length >= 1, 'failed state logged with the last exit status');
  assert.ok(daemon.matching(/worker state stopping -> failed/).length >= 1);
  // The observed gap from each scheduled restart to the next spawn follows the schedule,
  // with generous slack on the late side for a loaded machine.
  const spawns = daemon.matching(/worker spawned generation=/);
  for (let i = 0; i < 5; i++) {
    const gap = timeOf(spawns[i + 1]!) - timeOf(scheduled[i]!);
    assert.ok(gap >= delays[i]! - 2, `gap ${i + 1} was ${gap} ms, scheduled ${delays[i]} ms`);
    assert.ok(gap <= delays[i]! + 1500, `gap ${i + 1} was ${gap} ms, scheduled ${delays[i]} ms`);
  }
});

test('SIGTERM stops the whole tree, escapees included, removes pid file and socket, and exits 0', async (t) => {
  const scratch = makeTempDir();
  t.after(() => scratch.cleanup());
  const graceMs = 1500;
  const { daemon, dir } = await daemonInTempDir(t, `
[worker]
command = ["sh", ${JSON.stringify(join(FIXTURES, 'tree-worker.sh'))}, ${JSON.stringify(scratch.path)}]
stop_timeout_ms = ${graceMs}
`);
  const line = await waitFor('the tree fixture to print its pids', () => daemon.stdout.split('\n').find((l) => l.startsWith('{"worker"')));
  const all = treeReportPids(JSON.parse(line) as TreeReport);
  assert.equal(all.length, 25);
  assert.deepEqual(all.filter((p) => !isAlive(p)), [], 'all fixture processes run before the stop');
  assert.ok(existsSync(join(dir, 'd.pid')) && existsSync(join(dir, 'd.sock')));

  const began = Date.now();
  daemon.child.kill('SIGTERM');
  const exit = await daemon.exited;
  const tookMs = Date.now() - began;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(all.filter(isAlive), [], 'no process of the tree survives');
  assert.ok(tookMs < graceMs + 3000, `stop took ${tookMs} ms; grace is ${graceMs} ms`);
  assert.ok(daemon.matching(/SIGKILL sent after/).length >= 1, 'the TERM-ignoring child needed SIGKILL');
  assert.equal(daemon.matching(/INFO  worker stopped with signal SIGTERM generation=1 /).length, 1, 'an exit the daemon asked for is information, not a warning');
  assert.equal(daemon.matching(/worker exited/).length, 0);
  assert.equal(existsSync(join(dir, 'd.pid')), false, 'pid file removed');
  assert.equal(existsSync(join(dir, 'd.sock')), false, 'socket removed');
});

test('a second SIGINT during shutdown kills the tree at once instead of waiting out the grace', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]
stop_timeout_ms = 60000
`);
  await waitFor('the worker to report ready', () => daemon.stdout.includes('ready'));
  const began = Date.now();
  daemon.child.kill('SIGINT');
  await daemon.waitForLine(/SIGTERM sent to the worker tree/);
  daemon.child.kill('SIGINT');
  const exit = await daemon.exited;
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - began < 10_000, 'the 60 s grace was skipped');
  assert.ok(daemon.matching(/forcing stop/).length === 1);
});

test('a command that no longer resolves is a spawn failure with a clear reason, retried with backoff', async (t) => {
  // `start` refuses a command that does not resolve (exit 78, issue #15); one that stops resolving
  // later, here through a reload, still reaches the spawn.
  const { daemon, configPath } = await daemonInTempDir(t, `
[worker]
command = ["sleep", "1000"]
[restart]
initial_backoff_ms = 50
`);
  await daemon.waitForLine(/worker spawned/);
  writeFileSync(configPath, readFileSync(configPath, 'utf8').replace('["sleep", "1000"]', '["autopilotd-no-such-command-xyz"]'));
  assert.equal((await runCli(['reload', '--config', configPath])).code, 0);
  await runCli(['restart-worker', '--config', configPath]);
  await daemon.waitForLine(/worker spawn failed.*generation=3/);
  assert.match(daemon.matching(/worker spawn failed/)[0]!, /command not found: autopilotd-no-such-command-xyz/);
  assert.match(daemon.matching(/restarting worker in/)[0]!, /in 50 ms cause=crash consecutive_failures=1/);
  assert.equal(daemon.matching(/worker spawned/).length, 1);
});

test('a missing working_dir is reported as such, not as a missing command', async (t) => {
  const absent = join(tmpdir(), `apd-never-made-${process.pid}-${Date.now()}`, 'absent');
  const { daemon } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "100"]\n', { args: ['--workdir', absent] });
  const line = await daemon.waitForLine(/worker spawn failed/);
  assert.match(line, /working_dir .*absent is not usable \(ENOENT\)/);
});

test('with restart = "on-failure" an exit 0 leaves the worker stopped and the daemon running', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "exit 0"]
restart = "on-failure"
`);
  await daemon.waitForLine(/worker state stopping -> stopped/);
  assert.equal(daemon.matching(/restarting worker/).length, 0);
  assert.equal(daemon.child.exitCode, null, 'the daemon keeps running');
  // What the worker was meant to do: information, not a warning (issue #19).
  assert.equal(daemon.matching(/ INFO {2}worker finished with code 0; not a failure under restart = "on-failure" generation=1 /).length, 1, daemon.lines.join('\n'));
  assert.equal(daemon.matching(/worker exited/).length, 0, daemon.lines.join('\n'));
});

test('with restart = "on-failure" an exit 1 is still a warning', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "exit 1"]
restart = "on-failure"
`);
  await daemon.waitForLine(/ WARN {2}worker exited with code 1 generation=1 /);
  assert.equal(daemon.matching(/worker finished/).length, 0);
});

test('the worker gets its instance marker, generation and the project flag', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "echo \\"env $AUTOPILOTD_INSTANCE $AUTOPILOTD_GENERATION args $*\\"; sleep 100", "sh"]
`, { topLevel: 'project = "openagents"' });
  const line = await waitFor('the worker to print its environment', () => daemon.stdout.split('\n').find((l) => l.startsWith('env ')));
  assert.equal(line, `env ${daemon.instanceId} 1 args --project openagents`);
});

test('logs points a foreground daemon\'s user to its terminal rather than to a stale log file', async (t) => {
  const { daemon } = await daemonInTempDir(t, '[worker]\ncommand = ["sleep", "1000"]\n');
  const r = await runCli(['logs', '--config', daemon.configPath]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /runs in the foreground and logs to the terminal that started it/);
});

test('status shows the worker tree as it is now, not as at the last memory poll', async (t) => {
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "echo up $AUTOPILOTD_GENERATION; [ $AUTOPILOTD_GENERATION = 1 ] && exit 1; exec sleep 1000"]
[memory]
poll_interval_ms = 60000
[restart]
initial_backoff_ms = 50
`);
  await daemon.waitForLine(/worker spawned generation=2 /);
  await waitFor('generation 2 to run', () => daemon.stdout.includes('up 2'));
  const r = await runCli(['status', '--json', '--config', daemon.configPath]);
  assert.equal(r.code, 0, r.stderr);
  const status = JSON.parse(r.stdout) as StatusData;
  const pid = status.worker.pid;
  assert.equal(status.worker.generation, 2);
  assert.deepEqual(status.memory?.top.map((p) => p.pid), [pid], 'the current worker, though the guard has not polled since it started');
  assert.equal(status.memory?.tree_processes, 1);
});

test('under journald (JOURNAL_STREAM names its stderr) lines carry a syslog priority and no timestamp; worker stdout and stderr are told apart', async (t) => {
  const dir = makeTempDir();
  const logPath = join(dir.path, 'journal-stream');
  const fd = openSync(logPath, 'w');
  const { dev, ino } = fstatSync(fd);
  // The worker's own `<3>` and a line dressed as a daemon event must stay worker output (#16).
  const worker = 'echo "to stdout"; echo "to stderr" >&2; echo "<3>daemon stopped took_ms=1" >&2; exit 2';
  const config = writeConfig(dir.path, `[worker]\ncommand = ["sh", "-c", ${JSON.stringify(worker)}]\n[restart]\ninitial_backoff_ms = 60000\n`);
  const child = spawn(process.execPath, [CLI, 'start', '--foreground', '--config', config], {
    env: { ...cleanEnv(), JOURNAL_STREAM: `${dev}:${ino}` },
    stdio: ['ignore', 'ignore', fd],
  });
  closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    dir.cleanup();
  });
  await waitFor('the daemon to log the scheduled restart', () => readFileSync(logPath, 'utf8').includes('restarting worker in'));
  const logs = await runCli(['logs', '--config', config]);
  assert.equal(logs.code, 1);
  assert.match(logs.stderr, /the daemon logs to the journal: journalctl --user -u autopilotd/);
  child.kill('SIGTERM');
  await exited;
  const lines = readFileSync(logPath, 'utf8').trim().split('\n');
  assert.match(lines[0]!, /^<6>daemon started pid=\d+ /);
  assert.ok(lines.some((l) => /^<4>worker exited with code 2 /.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^<6>restarting worker in 60000 ms /.test(l)));
  assert.ok(lines.every((l) => /^<[3467]>\S/.test(l)), `every line has a priority prefix and no timestamp:\n${lines.join('\n')}`);
  assert.ok(lines.includes('<6>worker[1] to stdout'), lines.join('\n'));
  assert.ok(lines.includes('<6>worker[1,stderr] to stderr'), lines.join('\n'));
  assert.ok(lines.includes('<6>worker[1,stderr] <3>daemon stopped took_ms=1'), lines.join('\n'));
});

test('once the worker tree is gone, a new process that gets its old group id is not taken for the worker', async (t) => {
  if (process.getuid!() !== 0) return t.skip('steering the next pid (ns_last_pid) needs root');
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", "-c", "exit 1"]
[restart]
initial_backoff_ms = 60000
`);
  const line = await daemon.waitForLine(/worker spawned generation=1 pid=(\d+) /);
  const oldPgid = Number(/pid=(\d+)/.exec(line)![1]);
  await daemon.waitForLine(/restarting worker in 60000 ms/);
  // A bystander of ours that becomes a session leader under the worker's old pid: the kernel may
  // hand that pid out again now that its group is empty. Steer the next pid to it (other tests
  // fork too, so try a few times).
  let bystander: ReturnType<typeof spawn> | null = null;
  for (let attempt = 0; attempt < 50 && bystander === null; attempt++) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(oldPgid - 1));
    const child = spawn('setsid', ['sleep', '1000'], { stdio: 'ignore' });
    if (child.pid === oldPgid) bystander = child;
    else child.kill('SIGKILL');
  }
  if (bystander === null) return t.skip(`could not get pid ${oldPgid} for the bystander`);
  const b = bystander;
  t.after(() => { b.kill('SIGKILL'); });
  await waitFor('the bystander to lead its own session', () => {
    const stat = readFileSync(`/proc/${oldPgid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3] === String(oldPgid) && stat.includes('(sleep)');
  });
  const r = await runCli(['status', '--json', '--config', daemon.configPath]);
  const status = JSON.parse(r.stdout) as StatusData;
  assert.equal(status.worker.state, 'backoff');
  assert.equal(status.memory?.tree_processes, 0, `the bystander is not part of the worker tree: ${JSON.stringify(status.memory?.top)}`);
});

/** Pids of the processes (not zombies) carrying AUTOPILOTD_INSTANCE=id, read from /proc directly. */
function markedAlive(instanceId: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(`AUTOPILOTD_INSTANCE=${instanceId}`) && isAlive(Number(name))) pids.push(Number(name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ESRCH' && code !== 'EACCES') throw err;
    }
  }
  return pids;
}

test('in a crash loop each generation’s stop signals every escapee of that generation, and none survives (#14)', async (t) => {
  // The worker forks a group child, a setsid'd child and a double-forked one, and exits at once,
  // so the daemon looks for its tree while they exec: a read of an environment during an execve
  // once marked an escapee as not ours for its whole life.
  const generations = 40;
  const { daemon } = await daemonInTempDir(t, `
[worker]
command = ["sh", ${JSON.stringify(join(FIXTURES, 'crash-escapees.sh'))}]
stop_timeout_ms = 3000
[restart]
initial_backoff_ms = 1
max_backoff_ms = 1
max_consecutive_restarts = 1000
`);
  await daemon.waitForLine(new RegExp(`worker spawned generation=${generations + 1} `), 180_000);
  daemon.child.kill('SIGTERM');
  assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  const survivors = markedAlive(daemon.instanceId!);

  // Every escapee was signalled by its own generation's stop: after that generation exited,
  // before the next one was spawned.
  const kids = [...daemon.stdout.matchAll(/^kid (\d+) (\w+) (\d+)$/gm)].map((m) => ({ generation: Number(m[1]), kind: m[2]!, pid: Number(m[3]) }));
  for (let g = 1; g <= generations; g++) {
    assert.deepEqual(kids.filter((k) => k.generation === g).map((k) => k.kind).sort(), ['double', 'group', 'setsid'], `generation ${g}'s kids:\n${daemon.stdout}`);
  }
  const signalledBy = new Map<number, Set<number>>();
  let generation = 0;
  for (const line of daemon.lines) {
    const spawned = /worker spawned generation=(\d+) /.exec(line);
    if (spawned) generation = Number(spawned[1]);
    const signalled = /(?:SIGTERM sent to the worker tree|SIGKILL sent after \d+ ms|escaped tree members found and killed) .*pids=\[([\d,]*)\]/.exec(line);
    if (!signalled) continue;
    const pids = signalledBy.get(generation) ?? new Set<number>();
    for (const pid of signalled[1]!.split(',').filter((s) => s !== '')) pids.add(Number(pid));
    signalledBy.set(generation, pids);
  }
  const missed = kids.filter((k) => k.generation <= generations && !signalledBy.get(k.generation)?.has(k.pid));
  assert.deepEqual(missed, [], `escapees not signalled by their own generation's stop\n--- log ---\n${daemon.lines.join('\n')}`);
  assert.deepEqual(survivors, [], 'no process carrying the instance marker survives');
  // No SIGTERM went astray: a kid that setsid'd just before its group was signalled gets its own.
  assert.deepEqual(daemon.matching(/SIGKILL sent/), [], 'every escapee ended with its SIGTERM');
});

test('stop-worker: a bystander that gets the stopped worker’s pid while the stop waits on an escapee is never signalled (#14)', async (t) => {
  if (process.getuid!() !== 0) return t.skip('steering the next pid (ns_last_pid) needs root');
  const graceMs = 4000;
  const worker = ['sh', '-c', `setsid sh -c 'trap "" TERM; echo escapee $$; exec sleep 1000' & wait`];
  const { daemon, configPath } = await daemonInTempDir(t, `
[worker]
command = ${JSON.stringify(worker)}
stop_timeout_ms = ${graceMs}
`);
  const workerPid = Number(/pid=(\d+)/.exec(await daemon.waitForLine(/worker spawned generation=1 /))![1]);
  const escapeePid = Number((await waitFor('the escapee to report', () => /^escapee (\d+)$/m.exec(daemon.stdout)))[1]);
  await waitFor('the escapee to run sleep in its own session, ignoring SIGTERM', () => {
    const s = statOf(escapeePid);
    return s?.comm === 'sleep' && s.sid === escapeePid;
  });
  const escapee = see(escapeePid);

  const stopped = runCli(['stop-worker', '--config', configPath], { timeoutMs: graceMs + 30_000 });
  await daemon.waitForLine(/worker stopped with signal SIGTERM generation=1 /);
  // The daemon has reaped the worker; the stop still waits out the grace for the escapee.
  const child = await spawnOnPid(workerPid, ['sleep', '1000'], { stdio: 'ignore', env: cleanEnv() });
  if (child === null) {
    await stopped;
    return t.skip(`another process took pid ${workerPid} before the bystander could`);
  }
  const bystander = see(workerPid);
  t.after(() => killSeen(bystander));
  const placedAt = daemon.lines.length;
  if (daemon.matching(/SIGKILL sent/).length > 0) return t.skip('the grace ended before the bystander was in place');

  const r = await stopped;
  assert.equal(r.code, 0, r.stderr);
  await daemon.waitForLine(/worker tree gone/, 15_000, placedAt);
  const signalled = daemon.lines.slice(placedAt).filter((l) => /SIGTERM sent|SIGKILL sent|escaped tree members/.test(l));
  assert.ok(isAlive(bystander.pid) && statOf(bystander.pid)?.startTime === bystander.startTime, 'the bystander on the old worker pid was killed');
  assert.ok(!signalled.some((l) => new RegExp(`[[,]${bystander.pid}[\\],]`).test(l)), `the bystander ${bystander.pid} was signalled:\n${signalled.join('\n')}`);
  assert.match(daemon.matching(/SIGKILL sent after/)[0] ?? '', new RegExp(`pids=\\[${escapeePid}\\]`), 'only the escapee needed SIGKILL');
  assert.ok(!isAlive(escapee.pid) || statOf(escapee.pid)?.startTime !== escapee.startTime, 'the escapee survived');
});
