// `autopilotd status --watch` against a real background daemon (issue #19): successive plain
// blocks into a pipe, "not running" once the daemon is gone and found again when it is back, exit 0
// on Ctrl-C; and on a real pseudo-terminal (python3's pty module) the redraw in place, the cursor
// hidden and shown again on Ctrl-C.
import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { HIDE_CURSOR, SHOW_CURSOR, watchStatus, type Look } from '../../src/cli/status-watch.js';
import { CLI, cleanEnv, REPO_ROOT } from '../helpers/daemon.js';
import { sandbox, SLEEP_WORKER } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';
import { hasPty, PTY_MISSING, runOnPty } from '../helpers/pty.js';

const count = (text: string, part: string): number => text.split(part).length - 1;

test('status --watch into a pipe prints plain blocks, says when the daemon is gone, finds it again, exits 0 on Ctrl-C', async (t) => {
  const box = sandbox(t);
  const first = await box.start();
  const watching = box.spawnCli(['status', '--watch', '--interval', '200ms']);
  await waitFor(() => `two blocks; got ${JSON.stringify(watching.stdout)}`, () => count(watching.stdout, `: running, pid ${first.pid}`) >= 2);
  assert.match(watching.stdout, /^Every 0\.2s: autopilotd status {4}\d{4}-\d\d-\d\dT[\d:.]+Z\nautopilotd .*: running, pid \d+, up /);
  assert.equal((await box.cli(['stop'])).code, 0);
  await waitFor(() => `the daemon's absence; got ${JSON.stringify(watching.stdout.slice(-600))}`, () => /\nautopilotd is not running \(no daemon at .*\); looking again every 0\.2s\n/.test(watching.stdout));
  const second = await box.start();
  await waitFor(() => `the new daemon; got ${JSON.stringify(watching.stdout.slice(-600))}`, () => watching.stdout.includes(`: running, pid ${second.pid}`));
  watching.child.kill('SIGINT');
  assert.deepEqual(await watching.exited, { code: 0, signal: null });
  assert.equal(watching.stderr, '');
  assert.doesNotMatch(watching.stdout, /\x1b/, 'no terminal control into a pipe');
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('status --watch --json prints one JSON object a line, running or not', async (t) => {
  const box = sandbox(t);
  const watching = box.spawnCli(['status', '-w', '--json', '--interval', '100ms']);
  await waitFor(() => `two lines; got ${JSON.stringify(watching.stdout)}`, () => count(watching.stdout, '\n') >= 2);
  const [line] = watching.stdout.split('\n').map((l) => (l === '' ? null : JSON.parse(l) as Record<string, unknown>));
  assert.equal(line?.running, false);
  assert.match(String(line?.reason), /^no daemon at /);
  watching.child.kill('SIGINT');
  assert.deepEqual(await watching.exited, { code: 0, signal: null });
});

test('status --interval is checked: a DURATION, at least 100ms, only with --watch', async (t) => {
  const box = sandbox(t);
  for (const [args, message] of [
    [['status', '--watch', '--interval', 'soon'], /status: --interval: expected a DURATION/],
    [['status', '--watch', '--interval', '10ms'], /status: --interval: at least 100ms, got '10ms'/],
    [['status', '--interval', '2s'], /status: --interval goes with --watch/],
  ] as const) {
    const r = await box.cli([...args]);
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('with the daemon\'s location noted, status --watch still watches and --interval alone is still refused', async (t) => {
  const box = sandbox(t);
  const first = await box.start();
  await box.waitForNotedLocation();
  const r = await box.cli(['status', '--interval', '2s']);
  assert.equal(r.code, 64, r.stderr);
  assert.match(r.stderr, /status: --interval goes with --watch/);
  const watching = box.spawnCli(['status', '--watch', '--interval', '200ms']);
  await waitFor(() => `two blocks; got ${JSON.stringify(watching.stdout)}`, () => count(watching.stdout, `: running, pid ${first.pid}`) >= 2);
  watching.child.kill('SIGINT');
  assert.deepEqual(await watching.exited, { code: 0, signal: null });
});

test('status --watch on a terminal redraws in place with the cursor hidden, and Ctrl-C leaves it clean', async (t) => {
  if (!hasPty()) return t.skip(PTY_MISSING);
  const box = sandbox(t);
  const { pid } = await box.start();
  const env = { ...cleanEnv(), ...box.env(), TERM: 'xterm' };
  // Ctrl-C once the third frame is drawn.
  const run = await runOnPty([process.execPath, CLI, 'status', '--watch', '--interval', '200ms', '--config', box.configPath], { cwd: REPO_ROOT, env, ctrlCAfter: ['3*\x1b[J'] });
  assert.equal(run.code, 0, 'exit 0 on Ctrl-C');
  const screen = run.output;
  assert.ok(screen.startsWith('\x1b[?25l\x1b[H\x1b[2J'), `hides the cursor and clears the screen first: ${JSON.stringify(screen.slice(0, 40))}`);
  assert.ok(count(screen, '\x1b[HEvery 0.2s: autopilotd status') >= 3, 'each frame starts at the top left');
  assert.match(screen, new RegExp(`\\x1b\\[K\\nautopilotd .*: running, pid ${pid}, up .*\\x1b\\[K\\n`), 'each line clears what the last frame left');
  assert.ok(count(screen, '\x1b[J') >= 3, 'each frame clears the rest of the screen');
  assert.ok(screen.endsWith('\x1b[?25h\n'), `shows the cursor again and ends the line: ${JSON.stringify(screen.slice(-40))}`);
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('status --watch ends quietly with exit 0 once its reader is gone (| head -2), and with one line and exit 1 when it cannot write', async (t) => {
  const box = sandbox(t);
  const watching = box.spawnCli(['status', '--watch', '--interval', '100ms']);
  await waitFor(() => `a block; got ${JSON.stringify(watching.stdout)}`, () => watching.stdout.includes('looking again'));
  // As `head` does once it has its lines: the read end closes, the next write gets EPIPE.
  watching.child.stdout!.destroy();
  assert.deepEqual(await watching.exited, { code: 0, signal: null });
  assert.equal(watching.stderr, '', 'no EPIPE stack');

  const full = await box.cliInto('/dev/full', ['status', '--watch', '--interval', '100ms']);
  assert.deepEqual([full.code, full.signal], [1, null], full.stderr);
  assert.equal(full.stderr, 'autopilotd: status: cannot write the output: ENOSPC: no space left on device, write\n');
});

test('status --watch shows the cursor again when a look throws, and leaves no signal handler behind', async () => {
  const written: string[] = [];
  const out = new Writable({ write: (chunk: Buffer, _enc, cb) => { written.push(chunk.toString()); cb(); } }) as unknown as NodeJS.WriteStream;
  Object.assign(out, { isTTY: true, columns: 80, rows: 24 });
  const before = process.listenerCount('SIGINT');
  let looks = 0;
  const look = async (): Promise<Look> => {
    looks += 1;
    if (looks === 2) throw new Error('the look broke');
    return { absent: 'no daemon at /x.sock' };
  };
  await assert.rejects(watchStatus({ intervalMs: 100, json: false, look, out }), /the look broke/);
  assert.ok(written.join('').startsWith(HIDE_CURSOR));
  assert.ok(written.join('').endsWith(`${SHOW_CURSOR}\n`), JSON.stringify(written.slice(-2)));
  assert.equal(process.listenerCount('SIGINT'), before);
});

test('status --watch with a file too broken to tell the daemon keeps looking, and says a configuration warning once, not every interval', async (t) => {
  const box = sandbox(t);
  await box.start();
  // Unknown key: the rest still names the socket; the warning was repeated at every look.
  box.writeConfig(`bogus_key = 1\n${SLEEP_WORKER}`);
  const warned = box.spawnCli(['status', '--watch', '--interval', '100ms']);
  await waitFor(() => `three blocks; got ${JSON.stringify(warned.stdout)}`, () => count(warned.stdout, ': running, pid ') >= 3);
  warned.child.kill('SIGINT');
  assert.deepEqual(await warned.exited, { code: 0, signal: null });
  assert.equal(count(warned.stderr, 'warning: the configuration has problems'), 1, warned.stderr);
  assert.equal((await box.cli(['stop'])).code, 0);

  // A file that does not parse: no daemon started with it is found, which a watch shows as it
  // shows no daemon (it used to end at the first look with exit 78).
  writeFileSync(box.configPath, 'this is = = not toml\n');
  const broken = box.spawnCli(['status', '--watch', '--interval', '100ms']);
  await waitFor(() => `two blocks; got ${JSON.stringify(broken.stdout)} ${broken.stderr}`, () => count(broken.stdout, 'autopilotd is not running (invalid configuration:') >= 2);
  broken.child.kill('SIGINT');
  assert.deepEqual(await broken.exited, { code: 0, signal: null });
});
