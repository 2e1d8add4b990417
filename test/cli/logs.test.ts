// The background daemon's log file and `autopilotd logs`: rotation by size keeps at most
// logs.max_files files, `logs -n N` reads across rotated files, `logs -f` follows new worker
// output across a rotation until SIGINT.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cleanEnv, makeTempDir, REPO_ROOT } from '../helpers/daemon.js';
import { sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const MAX_FILE_BYTES = 65_536;
const PAD = 'x'.repeat(90);

/** The numbers N of lines "... worker[gen] <word> N ..." in order. */
function numbers(lines: string[], gen: number, word: string): number[] {
  const re = new RegExp(` worker\\[${gen}\\] ${word} (\\d+) `);
  return lines.flatMap((l) => {
    const m = re.exec(l);
    return m ? [Number(m[1])] : [];
  });
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('a chatty worker rotates the log: at most max_files files of at most max_file_bytes; logs -n N reads across them', async (t) => {
  const lines = 5000;
  const script = `i=0; while [ $i -lt ${lines} ]; do echo "chatty $i ${PAD}"; i=$((i+1)); done; echo "chatty done"; exec sleep 1000`;
  const box = sandbox(t, {
    body: `[worker]\ncommand = ["sh", "-c", ${JSON.stringify(script)}]\nstop_timeout_ms = 2000\n`,
    logs: `max_file_bytes = ${MAX_FILE_BYTES}\nmax_files = 3`,
  });
  const missing = await box.cli(['logs']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`^autopilotd: no log file at ${box.logPath}\\.\\n`));

  await box.start();
  await box.waitForLog(/ worker\[1\] chatty done$/, 30_000);

  assert.deepEqual(readdirSync(box.logDir).sort(), ['autopilotd.log', 'autopilotd.log.1', 'autopilotd.log.2', 'autopilotd.stderr.log']);
  assert.equal(statSync(join(box.logDir, 'autopilotd.stderr.log')).size, 0, 'nothing raw: every line went through the logger');
  for (const name of readdirSync(box.logDir).filter((n) => n.startsWith('autopilotd.log'))) {
    const size = statSync(join(box.logDir, name)).size;
    assert.ok(size > 0 && size <= MAX_FILE_BYTES, `${name} is ${size} bytes`);
  }
  const oldest = readFileSync(join(box.logDir, 'autopilotd.log.2'), 'utf8').split('\n');
  assert.ok(numbers(oldest, 1, 'chatty')[0]! > 0, 'the oldest lines were rotated away');

  // Everything kept, oldest first, with no line lost or repeated at the file boundaries.
  const all = await box.cli(['logs', '-n', '100000']);
  assert.equal(all.code, 0, all.stderr);
  const kept = all.stdout.split('\n').slice(0, -1);
  const seen = numbers(kept, 1, 'chatty');
  assert.deepEqual(seen, range(seen[0]!, lines - 1));
  assert.equal(kept.at(-1), box.log().split('\n').at(-2), 'the last line is the last line of the current file');

  // 600 lines is more than the current file holds (at most 64 KiB / ~140 bytes), so it spans files.
  const currentLines = box.log().split('\n').length - 1;
  assert.ok(currentLines < 600, `the current file holds ${currentLines} lines`);
  const some = await box.cli(['logs', '-n', '600']);
  assert.equal(some.code, 0, some.stderr);
  assert.deepEqual(some.stdout.split('\n').slice(0, -1), kept.slice(-600));

  const five = await box.cli(['logs', '-n', '5']);
  assert.deepEqual(five.stdout.split('\n').slice(0, -1), kept.slice(-5));
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('logs -f prints the last lines, then new worker lines as they come, across a rotation, until SIGINT', async (t) => {
  const lines = 1500;
  // Generation 1 idles; generation 2 writes about 210 KB: three rotations of 64 KiB files. Five files
  // of 64 KiB hold everything written, so no file is deleted while the follower may lag behind.
  const script = `if [ "$AUTOPILOTD_GENERATION" = 1 ]; then echo "gen 1 ready"; exec sleep 1000; fi; `
    + `i=0; while [ $i -lt ${lines} ]; do echo "follow $i ${PAD}"; i=$((i+1)); done; echo "gen 2 done"; exec sleep 1000`;
  const box = sandbox(t, {
    body: `[worker]\ncommand = ["sh", "-c", ${JSON.stringify(script)}]\nstop_timeout_ms = 2000\n`,
    logs: `max_file_bytes = ${MAX_FILE_BYTES}\nmax_files = 5`,
  });
  await box.start();
  await box.waitForLog(/ worker\[1\] gen 1 ready$/);

  const follower = box.spawnCli(['logs', '-f', '-n', '20']);

  await waitFor(() => `logs -f to print the existing lines; so far:\n${follower.stdout}${follower.stderr}`, () => follower.stdout.includes(' worker[1] gen 1 ready\n'));
  assert.ok(follower.stdout.startsWith(box.log().split('\n')[0]!), 'it starts with the last lines of the file (here, all of them)');

  const restart = await box.cli(['restart-worker']);
  assert.equal(restart.code, 0, restart.stderr);
  await waitFor(() => `logs -f to print generation 2's output; tail:\n${follower.stdout.slice(-500)}${follower.stderr}`, () => follower.stdout.includes(' worker[2] gen 2 done\n'), 30_000);
  assert.ok(readdirSync(box.logDir).filter((n) => n.startsWith('autopilotd.log')).length >= 4, `the log rotated meanwhile: ${readdirSync(box.logDir).join(', ')}`);
  const printed = follower.stdout.split('\n').slice(0, -1);
  assert.deepEqual(numbers(printed, 2, 'follow'), range(0, lines - 1), 'every new line once, in order');
  assert.ok(printed.some((l) => / INFO {2}worker spawned generation=2 /.test(l)), 'daemon events too');
  assert.equal(new Set(printed).size, printed.length, 'no line twice');

  follower.child.kill('SIGINT');
  assert.deepEqual(await follower.exited, { code: 0, signal: null }, `logs -f ends cleanly on SIGINT; stderr: ${follower.stderr}`);
  assert.equal((await box.cli(['stop'])).code, 0);
});

/** Worker output that would drive a terminal: colour, a CR that redraws the line as a fake error, NUL, 8-bit CSI. */
const HOSTILE_SCRIPT = String.raw`printf 'hostile \033[31mred\033[0m\r2026-01-01T00:00:00.000Z ERROR fake\0nul\n'; printf 'c1 \302\233x\n'; echo "hostile done"; exec sleep 1000`;
const HOSTILE_SHOWN = String.raw`hostile \x1b[31mred\x1b[0m\r2026-01-01T00:00:00.000Z ERROR fake\x00nul`;

/** `command` run by `script` on a new pseudo-terminal: its output as the terminal received it. */
function onTerminal(command: string[], env: Record<string, string>): { child: ReturnType<typeof spawn>; output: () => string; exited: Promise<number | null> } {
  const quoted = command.map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', quoted, '/dev/null'], { cwd: REPO_ROOT, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('latin1')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('latin1')));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Asserts that the terminal got no control character but the CR LF that ends each line. */
function assertInert(output: string): void {
  assert.doesNotMatch(output.replace(/\r\n/g, '\n'), /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, `raw control characters reached the terminal:\n${JSON.stringify(output)}`);
}

test('logs and logs -f escape control characters of worker output on a terminal, and pass them unchanged to a pipe (#14)', async (t) => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  if (!hasScript) {
    t.skip('needs script(1) from util-linux for a pseudo-terminal');
    return;
  }
  const box = sandbox(t, { body: `[worker]\ncommand = ["sh", "-c", ${JSON.stringify(HOSTILE_SCRIPT)}]\nstop_timeout_ms = 2000\n` });
  await box.start();
  await box.waitForLog(/ worker\[1\] hostile done$/);

  const piped = await box.cli(['logs']);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdout.includes(' worker[1] hostile \x1b[31mred\x1b[0m\r2026-01-01T00:00:00.000Z ERROR fake\0nul\n'), 'a pipe gets the bytes as logged');
  assert.ok(piped.stdout.includes(' worker[1] c1 \u009bx\n'));

  const env = box.env();
  const once = onTerminal([process.execPath, CLI, 'logs', '--config', box.configPath], env);
  assert.equal(await once.exited, 0, once.output());
  const shown = Buffer.from(once.output(), 'latin1').toString('utf8');
  assertInert(shown);
  assert.ok(shown.includes(` worker[1] ${HOSTILE_SHOWN}\r\n`), shown);
  assert.ok(shown.includes(' worker[1] c1 \\u009bx\r\n'), shown);

  const follow = onTerminal([process.execPath, CLI, 'logs', '-f', '--config', box.configPath], env);
  t.after(() => void follow.child.kill('SIGKILL'));
  await waitFor(() => `logs -f on a terminal to print the worker's lines; so far:\n${JSON.stringify(follow.output())}`, () => follow.output().includes('hostile done'));
  const restart = await box.cli(['restart-worker']);
  assert.equal(restart.code, 0, restart.stderr);
  await waitFor(() => `logs -f to print generation 2's lines; so far:\n${JSON.stringify(follow.output())}`, () => follow.output().includes(' worker[2] hostile done'));
  // The follower is the CLI that script's shell started; end it by PID as a user's Ctrl-C would.
  const cli = box.processes().find((p) => p.argv.includes('logs') && p.argv.includes('-f') && p.argv[0] === process.execPath);
  assert.ok(cli, `the logs -f process: ${JSON.stringify(box.processes())}`);
  process.kill(cli.pid, 'SIGINT');
  assert.equal(await follow.exited, 0, follow.output());
  const followed = Buffer.from(follow.output(), 'latin1').toString('utf8');
  assertInert(followed);
  assert.ok(followed.includes(` worker[1] ${HOSTILE_SHOWN}\r\n`), followed);
  assert.ok(followed.includes(` worker[2] ${HOSTILE_SHOWN}\r\n`), 'new lines, not only the last ones at start');
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('an error message on a terminal has its control characters escaped too (#14)', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) {
    t.skip('needs script(1) from util-linux for a pseudo-terminal');
    return;
  }
  const box = sandbox(t);
  // A failed start quotes log lines, worker output included; a bad -n quotes what was given.
  const run = onTerminal([process.execPath, CLI, 'logs', '-n', '\x1b[2J\r9', '--config', box.configPath], box.env());
  assert.equal(await run.exited, 64, run.output());
  assertInert(run.output());
  assert.match(run.output(), /-n expects a whole number, got '\\x1b\[2J\\r9'\r\n/);
});

test('status on a terminal escapes control characters of the worker argv (#14)', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) {
    t.skip('needs script(1) from util-linux for a pseudo-terminal');
    return;
  }
  // The argv is shown as given; an ESC in it would clear the operator's screen.
  const box = sandbox(t, { body: `[worker]\ncommand = ["sh", "-c", "exec sleep 1000", "\\u001b[2J\\rfake"]\nstop_timeout_ms = 2000\n` });
  await box.start();
  const run = onTerminal([process.execPath, CLI, 'status', '--config', box.configPath], box.env());
  assert.equal(await run.exited, 0, run.output());
  assertInert(run.output());
  assert.ok(run.output().includes('\\x1b[2J\\rfake'), run.output());
  assert.equal((await box.cli(['stop'])).code, 0);
});

/** Runs `logs <args>` into a pipe whose reader goes away after the first line, like `| head -1`. */
async function logsIntoHead(box: ReturnType<typeof sandbox>, args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string; first: string }> {
  const child = spawn(process.execPath, [CLI, 'logs', ...args, '--config', box.configPath], {
    env: { ...cleanEnv(), ...box.env() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stderrClosed = new Promise((resolve) => child.stderr.once('close', resolve));
  const first = await new Promise<string>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) {
        child.stdout.destroy(); // the reader is gone: the next write gets EPIPE
        resolve(out.split('\n')[0]!);
      }
    });
  });
  const result = await exited;
  await stderrClosed;
  return { ...result, stderr, first };
}

test('logs -n 200000 | head -1 exits 0 with nothing on stderr when the reader goes away (EPIPE, issue #15)', async (t) => {
  const box = sandbox(t);
  mkdirSync(box.logDir, { recursive: true, mode: 0o700 });
  const text = Array.from({ length: 200_000 }, (_, i) => `2026-01-01T00:00:00.000Z INFO  worker[1] line ${i} ${PAD}\n`).join('');
  writeFileSync(box.logPath, text, { mode: 0o600 });
  for (const args of [['-n', '200000'], ['-n', '200000', '-f']]) {
    const r = await logsIntoHead(box, args);
    assert.equal(r.first, `2026-01-01T00:00:00.000Z INFO  worker[1] line 0 ${PAD}`, args.join(' '));
    assert.deepEqual({ code: r.code, signal: r.signal, stderr: r.stderr }, { code: 0, signal: null, stderr: '' }, args.join(' '));
  }
});

test('logs and logs -f exit 1 with one line when stdout cannot be written (> /dev/full)', async (t) => {
  const box = sandbox(t);
  mkdirSync(box.logDir, { recursive: true, mode: 0o700 });
  writeFileSync(box.logPath, '2026-01-01T00:00:00.000Z INFO  worker[1] a line\n', { mode: 0o600 });
  for (const args of [['logs'], ['logs', '-f'], ['logs', '--json']]) {
    const r = await box.cliInto('/dev/full', args);
    assert.deepEqual([r.code, r.signal], [1, null], `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, 'autopilotd: logs: cannot write the output: ENOSPC: no space left on device, write\n', args.join(' '));
  }
});

test('a worker burst of 100000 lines in 64 KiB writes reaches the log whole and in order (issue #15)', async (t) => {
  const count = 100_000;
  const script = `const fs = require('node:fs'); let t = ''; for (let i = 0; i < ${count}; i++) { t += 'burst ' + i + ' ${PAD}\\n'; if (t.length > 65000) { fs.writeSync(1, t); t = ''; } } fs.writeSync(1, t + 'burst done\\n'); setInterval(() => {}, 1e6);`;
  const box = sandbox(t, {
    body: `[worker]\ncommand = [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(script)}]\nstop_timeout_ms = 2000\n`,
    logs: 'max_file_bytes = 4194304\nmax_files = 5',
  });
  await box.start();
  await box.waitForLog(/ worker\[1\] burst done$/, 60_000);
  const all = await box.cli(['logs', '-n', String(count + 100)]);
  assert.equal(all.code, 0, all.stderr);
  const seen = numbers(all.stdout.split('\n'), 1, 'burst');
  assert.ok(seen.length > count / 2, `only ${seen.length} lines kept`);
  assert.deepEqual(seen, range(seen[0]!, count - 1), 'none lost, repeated or out of order');
  assert.doesNotMatch(all.stdout, /dropped/);
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('under journald, logs names the unit of the daemon: autopilotd@NAME for an instance (#16)', async (t) => {
  const dir = makeTempDir('apd-j-');
  const home = join(dir.path, 'h');
  mkdirSync(join(home, '.autopilot'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, '.autopilot/web.toml'), `working_dir = ${JSON.stringify(home)}\n[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n`);
  const streamPath = join(dir.path, 'journal-stream');
  const fd = openSync(streamPath, 'w');
  const { dev, ino } = fstatSync(fd);
  const env = { ...cleanEnv(), HOME: home };
  const daemon = spawn(process.execPath, [CLI, 'start', '--foreground', '--instance', 'web'], { env: { ...env, JOURNAL_STREAM: `${dev}:${ino}` }, stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  t.after(async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGTERM');
    await exited;
    dir.cleanup();
  });
  await waitFor(() => `the instance daemon to be ready; its output:\n${readFileSync(streamPath, 'utf8')}`, () => readFileSync(streamPath, 'utf8').includes('worker spawned'));
  const logs = spawnSync(process.execPath, [CLI, 'logs', '--instance', 'web'], { env, encoding: 'utf8' });
  assert.equal(logs.status, 1, logs.stderr);
  assert.equal(logs.stderr, 'autopilotd: the daemon logs to the journal: journalctl --user -u autopilotd@web (add -f to follow)\n');
  assert.match(readFileSync(streamPath, 'utf8'), new RegExp(`daemon ready socket=${join(home, '.autopilot/autopilotd@web.sock').replace(/[.]/g, '\\.')}`));
});

/** Generation 1 and 2 each write to both streams, so that the filters have something to tell apart. */
const BOTH_STREAMS = `echo "out $AUTOPILOTD_GENERATION"; echo "err $AUTOPILOTD_GENERATION" >&2; `
  + `[ "$AUTOPILOTD_GENERATION" = 1 ] && seq 60 | sed 's/^/fill /'; echo "done $AUTOPILOTD_GENERATION"; exec sleep 1000`;

const outLines = (text: string): string[] => text.split('\n').slice(0, -1);

test('logs --stream, --since and --json tell the worker\'s stdout from its stderr and pick lines by time (#19)', async (t) => {
  const box = sandbox(t, { body: `[worker]\ncommand = ["sh", "-c", ${JSON.stringify(BOTH_STREAMS)}]\nstop_timeout_ms = 2000\n` });
  await box.start();
  await box.waitForLog(/ worker\[1\] done 1$/);
  await box.waitForLog(/ worker\[1,stderr\] err 1$/);

  const stderrOnly = await box.cli(['logs', '--stream', 'stderr']);
  assert.equal(stderrOnly.code, 0, stderrOnly.stderr);
  assert.deepEqual(outLines(stderrOnly.stdout).map((l) => l.replace(/^\S+ /, '')), ['INFO  worker[1,stderr] err 1']);
  const stdoutOnly = await box.cli(['logs', '--stream', 'stdout']);
  const stdoutShown = outLines(stdoutOnly.stdout).map((l) => l.replace(/^\S+ /, ''));
  assert.deepEqual([stdoutShown.length, stdoutShown[0], stdoutShown.at(-2), stdoutShown.at(-1)],
    [50, 'INFO  worker[1] fill 12', 'INFO  worker[1] fill 60', 'INFO  worker[1] done 1'], 'the last 50 stdout lines: -n counts lines shown');

  const json = await box.cli(['logs', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const records = outLines(json.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(records.length, 50, 'one object per line, the last 50');
  for (const r of records) assert.deepEqual(Object.keys(r), ['time', 'level', 'source', 'stream', 'generation', 'text']);
  const all = await box.cli(['logs', '--json', '-n', '1000']);
  const allRecords = outLines(all.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(allRecords.filter((r) => r.source === 'worker' && !String(r.text).startsWith('fill')).map((r) => [r.stream, r.generation, r.text, r.level]).sort(),
    [['stderr', 1, 'err 1', 'info'], ['stdout', 1, 'done 1', 'info'], ['stdout', 1, 'out 1', 'info']]);
  assert.ok(allRecords.some((r) => r.source === 'daemon' && r.level === 'info' && r.stream === null && r.generation === null && /^worker spawned /.test(String(r.text))));

  // A time after everything so far: only what generation 2 and the restart log comes after it.
  const mark = new Date(Date.parse(String(allRecords.at(-1)!.time)) + 1).toISOString();
  await waitFor('the clock to pass the mark', () => Date.now() > Date.parse(mark) + 5);
  assert.equal((await box.cli(['restart-worker'])).code, 0);
  await box.waitForLog(/ worker\[2\] done 2$/);
  await box.waitForLog(/ worker\[2,stderr\] err 2$/);
  const since = await box.cli(['logs', '--since', mark, '--stream', 'stdout', '--json']);
  assert.equal(since.code, 0, since.stderr);
  assert.deepEqual(outLines(since.stdout).map((l) => (JSON.parse(l) as { text: string }).text), ['out 2', 'done 2']);
  const recent = await box.cli(['logs', '--since', '10m', '-n', '2', '--stream', 'stderr']);
  assert.deepEqual(outLines(recent.stdout).map((l) => l.replace(/^\S+ /, '')), ['INFO  worker[1,stderr] err 1', 'INFO  worker[2,stderr] err 2']);
  const sinceAll = outLines((await box.cli(['logs', '--since', '1h'])).stdout);
  assert.ok(sinceAll.length > 62, `--since without -n: every line since then, past the default 50 (${sinceAll.length})`);
  assert.equal(sinceAll[0], outLines(box.log())[0]);

  for (const [flag, value, says] of [['--since', 'yesterday', /--since expects a DURATION ago .* or an ISO 8601 time/], ['--since', '2026-13-45', /--since expects/], ['--stream', 'both', /--stream expects stdout or stderr, got 'both'/]] as const) {
    const bad = await box.cli(['logs', flag, value]);
    assert.equal(bad.code, 64, `${flag} ${value}: ${bad.stderr}`);
    assert.match(bad.stderr, says);
  }

  // -f with a filter: the last matching lines first, then new ones, and nothing else.
  const follower = box.spawnCli(['logs', '-f', '-n', '1', '--stream', 'stderr']);
  await waitFor(() => `logs -f to print the last stderr line; so far:\n${follower.stdout}`, () => follower.stdout.includes(' worker[2,stderr] err 2\n'));
  assert.equal((await box.cli(['restart-worker'])).code, 0);
  await waitFor(() => `logs -f to print generation 3's stderr; so far:\n${follower.stdout}`, () => follower.stdout.includes(' worker[3,stderr] err 3\n'), 30_000);
  await box.waitForLog(/ worker\[3\] done 3$/);
  follower.child.kill('SIGINT');
  assert.equal((await follower.exited).code, 0);
  assert.deepEqual(outLines(follower.stdout).map((l) => l.replace(/^\S+ /, '')), ['INFO  worker[2,stderr] err 2', 'INFO  worker[3,stderr] err 3']);
  assert.equal((await box.cli(['stop'])).code, 0);
});
