import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openSync, closeSync, fstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { Logger, isJournaldStream, stderrSink, type LineSink, type LogRecord } from '../../src/log/logger.js';
import { FORMATS, renderEvent } from '../../src/log/events.js';
import { makeTempDir } from '../helpers/daemon.js';

function capture(): LineSink & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (l) => lines.push(l) };
}

const at = Date.parse('2026-11-25T10:00:00.000Z');
const LOGGER_MODULE = new URL('../../src/log/logger.js', import.meta.url).href;
const FILE_SIZE_LIMIT = 4096;
const noPrlimit = spawnSync('sh', ['-c', 'command -v prlimit']).status === 0 ? false : 'needs prlimit (util-linux) to stand in for a full disk';

test('plain lines carry an ISO timestamp, a level and key=value fields', () => {
  const sink = capture();
  new Logger(sink, 'plain', 'info', () => at).emit({ kind: 'worker-spawned', generation: 3, pid: 42, argv: ['node', 'w.mjs'], cwd: '/x y' });
  assert.deepEqual(sink.lines, ['2026-11-25T10:00:00.000Z INFO  worker spawned generation=3 pid=42 argv=[node,w.mjs] cwd="/x y"\n']);
});

test('journald lines carry a syslog priority prefix and no timestamp', () => {
  const sink = capture();
  const log = new Logger(sink, 'journald', 'debug', () => at);
  log.emit({ kind: 'worker-spawn-failed', generation: 1, reason: 'command not found: x' });
  log.emit({ kind: 'tree-kill-sent', pids: [1, 2], afterMs: 10 });
  log.emit({ kind: 'tree-gone', durationMs: 5 });
  assert.deepEqual(sink.lines, [
    '<3>worker spawn failed: command not found: x generation=1\n',
    '<4>SIGKILL sent after 10 ms pids=[1,2]\n',
    '<6>worker tree gone took_ms=5\n',
  ]);
});

test('lines below the level are not written, and a disabled event is not even formatted', () => {
  const sink = capture();
  const log = new Logger(sink, 'plain', 'warn', () => at);
  log.emit({ kind: 'tree-gone', durationMs: 5 });
  log.line('info', 'worker[1] hello');
  assert.deepEqual(sink.lines, []);
  assert.equal(log.enabled('debug'), false);
  log.setLevel('debug');
  log.line('info', 'worker[1] hello');
  assert.equal(sink.lines.length, 1);
});

test('every event kind has a level and renders without throwing', () => {
  for (const kind of Object.keys(FORMATS)) assert.ok(['debug', 'info', 'warn', 'error'].includes(FORMATS[kind as keyof typeof FORMATS].level), kind);
  const r = renderEvent({ kind: 'worker-exited', generation: 2, pid: 9, code: null, signal: 'SIGKILL', uptimeMs: 1200, tail: [] });
  assert.deepEqual(r, { level: 'warn', text: 'worker exited with signal SIGKILL generation=2 pid=9 uptime_ms=1200' });
});

test('JOURNAL_STREAM is honoured only when it names the very stream on the fd', (t) => {
  const dir = makeTempDir();
  t.after(() => dir.cleanup());
  const path = join(dir.path, 'stream');
  writeFileSync(path, '');
  const fd = openSync(path, 'a');
  const other = openSync(join(dir.path, 'other'), 'a');
  t.after(() => {
    closeSync(fd);
    closeSync(other);
  });
  const st = fstatSync(fd);
  assert.equal(isJournaldStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd), true);
  assert.equal(isJournaldStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, other), false, 'a redirected fd is not the journal');
  assert.equal(isJournaldStream({}, fd), false);
  assert.equal(isJournaldStream({ JOURNAL_STREAM: 'garbage' }, fd), false);
});

test('the worker output is written whatever the daemon log level', () => {
  const sink = capture();
  const log = new Logger(sink, 'plain', 'error', () => at);
  log.line('info', 'daemon detail');
  log.workerOutput('worker[2] ', ['compiling']);
  assert.deepEqual(sink.lines, ['2026-11-25T10:00:00.000Z INFO  worker[2] compiling\n']);
});

test('the lines of a worker chunk go to the sink in one writeSoon, each a whole log line (issue #15)', () => {
  const batches: [string, number][] = [];
  const log = new Logger({ write: () => assert.fail('not write'), writeSoon: (text, lines) => batches.push([text, lines]) }, 'journald', 'info', () => at);
  log.workerOutput('worker[1] ', ['a', 'b', 'c']);
  assert.deepEqual(batches, [['<6>worker[1] a\n<6>worker[1] b\n<6>worker[1] c\n', 3]]);
});

test('a multi-line entry (a stack trace, a reload error listing problems) is one line in every style (issue #15)', () => {
  const err = new Error('boom');
  err.stack = 'Error: boom\n    at f (/x/a.js:1:2)\r\n    at g (/x/b.js:3:4)\n';
  const reload = 'invalid configuration:\n/etc/a.toml:3:1 worker.command: expected array\n/etc/a.toml:5:1 restart.x: unknown key';
  for (const style of ['plain', 'journald'] as const) {
    const sink = capture();
    const log = new Logger(sink, style, 'info', () => at);
    const seen: string[] = [];
    log.subscribe((r) => seen.push(r.text));
    log.emit({ kind: 'internal-error', message: err.stack });
    log.emit({ kind: 'config-reload-rejected', message: reload });
    log.line('error', 'first\nsecond');
    assert.equal(sink.lines.length, 3, style);
    for (const line of sink.lines) {
      assert.equal(line.indexOf('\n'), line.length - 1, `${style}: one line: ${JSON.stringify(line)}`);
    }
    assert.ok(sink.lines[0]!.endsWith('internal error: Error: boom\\n    at f (/x/a.js:1:2)\\n    at g (/x/b.js:3:4)\n'), sink.lines[0]);
    assert.ok(sink.lines[1]!.includes('expected array\\n/etc/a.toml:5:1 restart.x'), sink.lines[1]);
    if (style === 'journald') assert.deepEqual(sink.lines.map((l) => l.slice(0, 3)), ['<3>', '<3>', '<3>']);
    assert.ok(seen.every((t) => !t.includes('\n')), 'subscribers get the one-line text too');
  }
});

/** A stand-in for process.stderr that records what was written. */
function fakeStderr(isTTY: boolean): EventEmitter & { isTTY: boolean; written: string[]; write(text: string): boolean } {
  const stream = Object.assign(new EventEmitter(), { isTTY, written: [] as string[], write: (text: string) => stream.written.push(text) > 0 });
  return stream;
}

test('on a terminal stderr, control characters in a line are made visible; on a pipe they pass unchanged (#14)', () => {
  const event = { kind: 'worker-spawn-failed', generation: 1, reason: 'command not found: \x1b]0;pwned\x07x\rINFO ok' } as const;
  const terminal = fakeStderr(true);
  new Logger(stderrSink(terminal as unknown as NodeJS.WriteStream), 'plain', 'info', () => at).emit(event);
  assert.deepEqual(terminal.written, ['2026-11-25T10:00:00.000Z ERROR worker spawn failed: command not found: \\x1b]0;pwned\\x07x\\rINFO ok generation=1\n']);
  const pipe = fakeStderr(false);
  new Logger(stderrSink(pipe as unknown as NodeJS.WriteStream), 'plain', 'info', () => at).emit(event);
  assert.deepEqual(pipe.written, ['2026-11-25T10:00:00.000Z ERROR worker spawn failed: command not found: \x1b]0;pwned\x07x\rINFO ok generation=1\n']);
});

test('stderrSink stops writing after a stream error (the reader is gone) instead of throwing', () => {
  const stream = fakeStderr(true);
  const sink = stderrSink(stream as unknown as NodeJS.WriteStream);
  sink.write('one\n');
  stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  sink.write('two\n');
  assert.deepEqual(stream.written, ['one\n']);
});

test('stderrSink reports an error other than EPIPE once, drops and counts lines while it lasts, then says how many were lost (#15)', { skip: noPrlimit }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'autopilotd-stderr-test-'));
  try {
    const path = join(dir, 'stderr.log');
    // The file is at RLIMIT_FSIZE already: every write to it fails with EFBIG (Node ignores SIGXFSZ).
    writeFileSync(path, 'x'.repeat(FILE_SIZE_LIMIT));
    const fd = openSync(path, 'a');
    const script = `
      import { stderrSink } from ${JSON.stringify(LOGGER_MODULE)};
      import { truncateSync } from 'node:fs';
      const problems = [];
      const sink = stderrSink(process.stderr, (m) => problems.push(m));
      const turn = () => new Promise((r) => setImmediate(r));
      sink.write('line 1\\n');
      await turn();
      sink.write('line 2\\n');
      sink.write('line 3\\n');
      truncateSync(${JSON.stringify(path)}, 0); // space is back
      sink.write('line 4\\n');
      sink.write('line 5\\n');
      const afterNotice = sink.droppedLines;
      truncateSync(${JSON.stringify(path)}, ${FILE_SIZE_LIMIT}); // full again: two more lost
      sink.write('line 6\\n');
      sink.write('line 7\\n');
      process.stdout.write(JSON.stringify({ problems, afterNotice, total: sink.droppedLines }));
    `;
    const child = spawnSync('prlimit', [`--fsize=${FILE_SIZE_LIMIT}`, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', fd], encoding: 'utf8', timeout: 60_000 });
    closeSync(fd);
    assert.equal(child.status, 0, `child failed: ${child.stdout}`);
    const { problems, afterNotice, total } = JSON.parse(child.stdout) as { problems: string[]; afterNotice: number; total: number };
    assert.equal(problems.length, 2, problems.join(' | '));
    assert.match(problems[0]!, /cannot write to stderr: .*EFBIG/);
    const expected = 'autopilotd: dropped 3 log lines (EFBIG)\nline 4\nline 5\n';
    assert.equal(readFileSync(path, 'utf8').slice(0, expected.length), expected);
    // The notice counts since the last one; droppedLines (the metrics' figure) keeps the total.
    assert.equal(afterNotice, 3);
    assert.equal(total, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the worker\'s output goes to the sink only: subscribe() listeners never hear it', () => {
  const sink = capture();
  const log = new Logger(sink, 'plain', 'debug', () => at);
  const heard: LogRecord[] = [];
  log.subscribe((r) => heard.push(r));
  log.workerOutput('worker[1] ', ['a', 'b']);
  log.line('info', 'a daemon line');
  assert.equal(sink.lines.length, 2);
  assert.deepEqual(heard.map((r) => r.text), ['a daemon line']);
});

test('an event below the log level is not rendered unless a listener reads its text', () => {
  const format = FORMATS['memory-sample'];
  const original = format.text;
  let rendered = 0;
  format.text = (e) => { rendered += 1; return original(e); };
  try {
    const sink = capture();
    const log = new Logger(sink, 'plain', 'info', () => at);
    const kinds: string[] = [];
    const unsubscribe = log.subscribe((r) => { if (r.event !== null) kinds.push(r.event.kind); });
    const sample = { kind: 'memory-sample', level: 'ok', availableBytes: 1 << 30, treeRssBytes: 1 << 20, treeSwapBytes: 0, treeProcesses: 2, nextPollMs: 5000 } as const;
    log.emit(sample);
    assert.deepEqual(kinds, ['memory-sample'], 'listeners still hear the event');
    assert.equal(rendered, 0, 'nothing formatted for a disabled level');
    assert.deepEqual(sink.lines, []);
    unsubscribe();
    const texts: string[] = [];
    log.subscribe((r) => texts.push(r.text, r.text));
    log.emit(sample);
    assert.equal(rendered, 1, 'rendered once when read');
    assert.match(texts[0]!, /^memory level=ok available=1024\.0MiB/);
    assert.equal(texts[0], texts[1]);
  } finally {
    format.text = original;
  }
});
