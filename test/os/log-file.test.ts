import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { test } from 'node:test';
import { RotatingLogFile, SLOW_WRITE_MS, type AsyncWrite } from '../../src/os/log-file.js';
import { scratchArea } from '../helpers/scratch.js';
import { collectLines } from '../helpers/lines.js';

const LOG_FILE_MODULE = new URL('../../src/os/log-file.js', import.meta.url).href;
// The read-only-directory test runs its writer as another user.
const { root: tempRoot, freshDir, track } = scratchArea('autopilotd-logfile-test-', 0o755);

function sequenceLine(seq: number): string {
  return `line ${String(seq).padStart(8, '0')} ${'x'.repeat(80)}\n`;
}

/** Sequence numbers in path.<maxFiles-1> ... path.1, path, read in that (oldest first) order. */
function sequencesOnDisk(path: string, maxFiles: number): number[] {
  const files = [...Array.from({ length: maxFiles - 1 }, (_, i) => `${path}.${maxFiles - 1 - i}`), path];
  return files
    .filter((file) => existsSync(file))
    .flatMap((file) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== ''))
    .map((l) => Number(/^line (\d+) /.exec(l)?.[1] ?? Number.NaN));
}

test('rotation keeps exactly maxFiles files, each at most maxFileBytes, after writing 8 MiB', () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  const maxFileBytes = 256 * 1024;
  const log = new RotatingLogFile({ path, maxFileBytes, maxFiles: 4 });
  const lineCount = Math.ceil((8 * 1024 * 1024) / sequenceLine(0).length);
  for (let seq = 0; seq < lineCount; seq += 1) log.write(sequenceLine(seq));
  log.close();

  assert.deepEqual(readdirSync(dir).sort(), ['daemon.log', 'daemon.log.1', 'daemon.log.2', 'daemon.log.3']);
  let totalBytes = 0;
  for (const name of readdirSync(dir)) {
    const size = statSync(join(dir, name)).size;
    assert.ok(size <= maxFileBytes, `${name} is ${size} bytes, over ${maxFileBytes}`);
    totalBytes += size;
  }
  assert.ok(totalBytes <= 4 * maxFileBytes);
  // Rotated files were full: the bound is used, not wasted.
  assert.ok(statSync(`${path}.3`).size > maxFileBytes - sequenceLine(0).length);
  assert.equal(log.droppedLines, 0);
});

test('lines stay in order, none lost or repeated, across rotations', () => {
  const path = join(freshDir(), 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 4096, maxFiles: 5 });
  const lineCount = 500;
  for (let seq = 0; seq < lineCount; seq += 1) log.write(sequenceLine(seq));
  log.close();
  const sequences = sequencesOnDisk(path, 5);
  assert.ok(sequences.length > 100, `only ${sequences.length} lines kept`);
  const first = sequences[0] ?? -1;
  assert.deepEqual(sequences, Array.from({ length: lineCount - first }, (_, i) => first + i));
});

/** `count` sequence lines from `from`, as one text (a worker chunk's worth). */
function sequenceText(from: number, count: number): string {
  let text = '';
  for (let seq = from; seq < from + count; seq += 1) text += sequenceLine(seq);
  return text;
}

test('a burst through writeSoon reaches the files whole, in order, rotation bounded (issue #15)', async () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  const maxFileBytes = 64 * 1024;
  const log = new RotatingLogFile({ path, maxFileBytes, maxFiles: 4 });
  // Chunks of 700 lines (~64 KiB, a pipe read), more of them than the files hold.
  const chunks = 12;
  for (let c = 0; c < chunks; c += 1) log.writeSoon(sequenceText(c * 700, 700), 700);
  await log.drain();
  // A daemon line written now comes after the burst.
  log.writeSoon(sequenceText(chunks * 700, 3), 3);
  log.write(sequenceLine(chunks * 700 + 3));
  await log.drain();
  log.close();
  assert.deepEqual(readdirSync(dir).sort(), ['daemon.log', 'daemon.log.1', 'daemon.log.2', 'daemon.log.3']);
  for (const name of readdirSync(dir)) {
    const size = statSync(join(dir, name)).size;
    assert.ok(size <= maxFileBytes, `${name} is ${size} bytes, over ${maxFileBytes}`);
    assert.ok(readFileSync(join(dir, name), 'utf8').endsWith('\n'), `${name} ends with a whole line`);
  }
  const sequences = sequencesOnDisk(path, 4);
  const first = sequences[0] ?? -1;
  assert.ok(first > 0, 'the oldest lines were rotated away');
  assert.deepEqual(sequences, Array.from({ length: chunks * 700 + 4 - first }, (_, i) => first + i));
  assert.equal(log.droppedLines, 0);
});

test('past maxPendingBytes queued, writeSoon drops lines, reports once, and the next write says how many (issue #15)', async () => {
  const path = join(freshDir(), 'daemon.log');
  const problems: string[] = [];
  const chunk = sequenceText(0, 10);
  const disk = slowDisk(SLOW_WRITE_MS * 3);
  const log = new RotatingLogFile({ path, maxFileBytes: 1_000_000, maxFiles: 2, maxPendingBytes: chunk.length * 2, ...disk, onProblem: (m) => problems.push(m) });
  log.writeSoon(sequenceLine(0), 1); // slow: later lines are queued
  log.writeSoon(sequenceText(1, 10), 10);
  log.writeSoon(sequenceText(11, 10), 10);
  log.writeSoon(sequenceText(21, 10), 10); // over the bound: dropped
  log.writeSoon(sequenceText(31, 10), 10); // dropped
  assert.equal(log.droppedLines, 20);
  assert.equal(problems.length, 1, problems.join(' | '));
  assert.match(problems[0]!, /more than \d+ bytes of log lines waiting/);
  await log.drain();
  log.writeSoon(sequenceText(41, 1), 1);
  await log.drain();
  log.close();
  assert.equal(readFileSync(path, 'utf8'), `${sequenceText(0, 21)}autopilotd: dropped 20 log lines (backlog full)\n${sequenceLine(41)}`);
});

/**
 * A disk that takes `delayMs` per write(2) (what it can be on NFS or a dying disk): the synchronous
 * write blocks that long, the asynchronous one resolves that much later. `delayMs` can change.
 */
function slowDisk(delayMs: number): { writeAsync: AsyncWrite; writeSync: (fd: number, b: Buffer, o: number, l: number) => number; writes: () => number; settled: () => Promise<unknown>; setDelay: (ms: number) => void } {
  let writes = 0;
  let delay = delayMs;
  const started: Promise<number>[] = [];
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return {
    writes: () => writes,
    settled: () => Promise.allSettled(started),
    setDelay: (ms) => (delay = ms),
    writeSync: (fd, buffer, offset, length) => {
      writes += 1;
      if (delay > 0) Atomics.wait(pause, 0, 0, delay);
      return writeSync(fd, buffer, offset, length);
    },
    writeAsync: (fd, buffer, offset, length) => {
      writes += 1;
      const p = new Promise<number>((resolve, reject) => {
        setTimeout(() => {
          try {
            resolve(writeSync(fd, buffer, offset, length));
          } catch (err) {
            reject(err);
          }
        }, delay);
      });
      started.push(p);
      return p;
    },
  };
}

test('while the disk keeps up, worker output is on disk when writeSoon returns (issue #15)', () => {
  const path = join(freshDir(), 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 1_000_000, maxFiles: 2 });
  log.writeSoon(sequenceText(0, 3), 3);
  assert.equal(readFileSync(path, 'utf8'), sequenceText(0, 3));
  log.write('event\n');
  assert.equal(readFileSync(path, 'utf8'), `${sequenceText(0, 3)}event\n`);
  log.close();
});

test('a disk slower than the worker blocks one write at most: then lines are queued, those past the bound dropped and counted, the rest kept in order (issue #15)', async () => {
  const path = join(freshDir(), 'daemon.log');
  const disk = slowDisk(300);
  const problems: string[] = [];
  const chunk = (from: number): string => sequenceText(from, 100);
  const bound = chunk(0).length * 3;
  const log = new RotatingLogFile({ path, maxFileBytes: 10_000_000, maxFiles: 2, maxPendingBytes: bound, ...disk, onProblem: (m) => problems.push(m) });
  // Written at once; it takes 300 ms, so from now on the disk counts as slow.
  log.writeSoon(chunk(0), 100);
  assert.equal(readFileSync(path, 'utf8'), chunk(0));
  // The worker goes on: each call returns at once, whatever the disk does.
  for (let c = 1; c < 10; c += 1) {
    const before = performance.now();
    log.writeSoon(chunk(c * 100), 100);
    assert.ok(performance.now() - before < SLOW_WRITE_MS, 'writeSoon waited on the disk');
  }
  // Three chunks fit the bound, six are dropped.
  assert.equal(log.droppedLines, 600);
  assert.equal(problems.length, 1, problems.join(' | '));
  // A daemon event now waits behind the queue instead of writing past it.
  log.write('daemon event\n');
  assert.equal(readFileSync(path, 'utf8'), chunk(0), 'nothing more was written synchronously');
  await log.drain();
  log.close();
  const text = readFileSync(path, 'utf8');
  assert.equal(text, `${chunk(0)}${chunk(100)}${chunk(200)}${chunk(300)}autopilotd: dropped 600 log lines (backlog full)\ndaemon event\n`);
});

test('a daemon event with the disk slow follows the batch on the disk; once the disk keeps up, writing is synchronous again (issue #15)', async () => {
  const path = join(freshDir(), 'daemon.log');
  const disk = slowDisk(100);
  const log = new RotatingLogFile({ path, maxFileBytes: 1_000_000, maxFiles: 2, ...disk });
  log.write('first event\n');
  assert.equal(readFileSync(path, 'utf8'), 'first event\n', 'written synchronously (and slowly)');
  log.writeSoon('worker line\n', 1);
  await new Promise((resolve) => setImmediate(resolve));
  log.write('second event\n');
  assert.equal(readFileSync(path, 'utf8'), 'first event\n', 'the event did not pass the worker line on the disk');
  disk.setDelay(0);
  await log.drain();
  assert.equal(readFileSync(path, 'utf8'), 'first event\nworker line\nsecond event\n');
  // The last batch went out quickly and the queue is empty: at once again.
  log.writeSoon('fast again\n', 1);
  assert.equal(readFileSync(path, 'utf8'), 'first event\nworker line\nsecond event\nfast again\n');
  log.close();
});

test('close while a batch is still on the disk writes the rest and closes the fd only after that write (issue #15)', async () => {
  const path = join(freshDir(), 'daemon.log');
  const disk = slowDisk(200);
  const log = new RotatingLogFile({ path, maxFileBytes: 1_000_000, maxFiles: 2, ...disk });
  log.writeSoon('slow line\n', 1); // synchronous, slow: the disk counts as slow from now on
  log.writeSoon('worker line\n', 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(disk.writes(), 2, 'the second line is on its way');
  log.writeSoon('later line\n', 1);
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'slow line\nlater line\n', 'the queue is written at close');
  await disk.settled();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(readFileSync(path, 'utf8'), 'slow line\nlater line\nworker line\n', 'the batch on the disk still landed: its fd was not closed under it');
  assert.equal(log.droppedLines, 0);
});

test('a line longer than a whole file within a batch is cut to fit, and the lines around it kept (issue #15)', () => {
  const path = join(freshDir(), 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 200, maxFiles: 3 });
  log.writeSoon(`short\n${'é'.repeat(300)}\nafter\n`, 3);
  log.close();
  const files = [`${path}.2`, `${path}.1`, path].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8'));
  assert.deepEqual(files.map((f) => Buffer.byteLength(f) <= 200), files.map(() => true));
  const lines = files.join('').split('\n');
  assert.equal(lines[0], 'short');
  assert.match(lines[1]!, /^é+$/, 'cut on a character boundary');
  assert.equal(lines[2], 'after');
});

test('with maxFiles 1 rotation starts the one file over', () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 1000, maxFiles: 1 });
  for (let seq = 0; seq < 100; seq += 1) log.write(sequenceLine(seq));
  log.close();
  assert.deepEqual(readdirSync(dir), ['daemon.log']);
  assert.equal(sequencesOnDisk(path, 1).at(-1), 99);
});

test('rotation deletes rotated files left beyond maxFiles by an earlier, larger setting', () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  for (const suffix of ['.1', '.2', '.3', '.7', '.x']) writeFileSync(path + suffix, 'old\n');
  const log = new RotatingLogFile({ path, maxFileBytes: 200, maxFiles: 2 });
  for (let seq = 0; seq < 5; seq += 1) log.write(sequenceLine(seq));
  log.close();
  assert.deepEqual(readdirSync(dir).sort(), ['daemon.log', 'daemon.log.1', 'daemon.log.x']);
});

test('a line longer than a whole file is cut to fit, on a character boundary', () => {
  const path = join(freshDir(), 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 10, maxFiles: 2 });
  log.write('ééééééé\n'); // 14 bytes + '\n'
  log.write('no newline');
  log.close();
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'éééé\n');
  assert.equal(readFileSync(path, 'utf8'), 'no newlin\n');
});

test('creates missing directories with mode 0700', () => {
  const dir = freshDir();
  const path = join(dir, 'a', 'b', 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 1000, maxFiles: 2 });
  log.write('hello\n');
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'hello\n');
  assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
});

/** Past this many bytes a file of the child in runWithFullDisk takes no more writes. */
const FILE_SIZE_LIMIT = 4096;
const noPrlimit = spawnSync('sh', ['-c', 'command -v prlimit']).status === 0 ? false : 'needs prlimit (util-linux) to stand in for a full disk';

/**
 * Runs `body` (an async function body returning JSON) in a child whose files cannot grow past
 * FILE_SIZE_LIMIT (RLIMIT_FSIZE; Node ignores SIGXFSZ): a log file filled to the limit by `fill()`
 * then fails every write with EFBIG, as a full disk fails them with ENOSPC. The log must be a
 * regular file of ours, so a symbolic link to /dev/full no longer stands in (issue #14).
 */
function runWithFullDisk(path: string, body: string): unknown {
  const script = `
    const { RotatingLogFile } = await import(process.env.LOG_FILE_MODULE);
    const fs = await import('node:fs');
    const path = process.env.LOG_PATH;
    const fill = () => fs.writeFileSync(path, 'f'.repeat(${FILE_SIZE_LIMIT}));
    ${sequenceLine.toString()}
    const result = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify(result));
  `;
  const child = spawnSync('prlimit', [`--fsize=${FILE_SIZE_LIMIT}`, process.execPath, '--input-type=module', '-e', script], {
    env: { ...process.env, LOG_FILE_MODULE, LOG_PATH: path },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(child.status, 0, `the writer failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as unknown;
}

test('a full disk drops lines without throwing, reports once, then recovers with a dropped-lines notice', { skip: noPrlimit }, () => {
  const path = join(freshDir(), 'daemon.log');
  const result = runWithFullDisk(path, `
    const problems = [];
    fill();
    const log = new RotatingLogFile({ path, maxFileBytes: 1000000, maxFiles: 3, onProblem: (m) => problems.push(m) });
    for (let seq = 0; seq < 5; seq += 1) log.write(sequenceLine(seq));
    const full = { dropped: log.droppedLines, problems: [...problems] };
    fs.unlinkSync(path); // Space is back.
    log.write(sequenceLine(5));
    log.write(sequenceLine(6));
    const recovered = { dropped: log.droppedLines, content: fs.readFileSync(path, 'utf8') };
    // A new streak is reported again, and its notice counts only its own lines.
    fill();
    log.write(sequenceLine(7));
    const again = { problems: problems.length };
    fs.unlinkSync(path);
    log.write(sequenceLine(8));
    log.close();
    return { full, recovered, again, last: { dropped: log.droppedLines, content: fs.readFileSync(path, 'utf8') } };
  `) as {
    full: { dropped: number; problems: string[] };
    recovered: { dropped: number; content: string };
    again: { problems: number };
    last: { dropped: number; content: string };
  };
  assert.equal(result.full.dropped, 5);
  assert.equal(result.full.problems.length, 1, `problems: ${result.full.problems.join(' | ')}`);
  assert.match(result.full.problems[0] ?? '', /EFBIG/);
  assert.ok(result.full.problems[0]?.includes(path), result.full.problems[0]);
  assert.equal(result.recovered.content, `autopilotd: dropped 5 log lines (EFBIG)\n${sequenceLine(5)}${sequenceLine(6)}`);
  assert.equal(result.recovered.dropped, 5);
  assert.equal(result.again.problems, 2);
  assert.equal(result.last.content, `autopilotd: dropped 1 log lines (EFBIG)\n${sequenceLine(8)}`);
  assert.equal(result.last.dropped, 6);
});

test('a custom notice keeps a JSON-lines log parseable after drops', { skip: noPrlimit }, () => {
  const path = join(freshDir(), 'daemon.log');
  const content = runWithFullDisk(path, `
    fill();
    const log = new RotatingLogFile({
      path,
      maxFileBytes: 1000000,
      maxFiles: 2,
      droppedNotice: (droppedLines, errno) => JSON.stringify({ kind: 'log_lines_dropped', droppedLines, errno }) + '\\n',
    });
    log.write('{"n":1}\\n');
    fs.unlinkSync(path);
    log.write('{"n":2}\\n');
    log.close();
    return fs.readFileSync(path, 'utf8');
  `) as string;
  const records = content.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.deepEqual(records, [{ kind: 'log_lines_dropped', droppedLines: 1, errno: 'EFBIG' }, { n: 2 }]);
});

test('a symbolic link at the log path is not followed: its target is not written, lines are dropped and reported (issue #14)', () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  writeFileSync(join(dir, 'target'), 'secret\n');
  symlinkSync(join(dir, 'target'), path);
  const problems: string[] = [];
  const log = new RotatingLogFile({ path, maxFileBytes: 1000, maxFiles: 3, onProblem: (m) => problems.push(m) });
  log.write('one\n');
  log.write('two\n');
  assert.equal(log.droppedLines, 2);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', new RegExp(`^cannot write log file ${path}: unsafe file: ${path} is a symbolic link to ${join(dir, 'target')}; `));
  assert.equal(readFileSync(join(dir, 'target'), 'utf8'), 'secret\n');
  unlinkSync(path);
  log.write('three\n');
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'autopilotd: dropped 2 log lines (unsafe_file)\nthree\n');
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('a symbolic link put in place of the open log file is not followed either (issue #14)', () => {
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  writeFileSync(join(dir, 'target'), 'secret\n');
  const log = new RotatingLogFile({ path, maxFileBytes: 10_000, maxFiles: 3 });
  log.write('before\n');
  unlinkSync(path);
  symlinkSync(join(dir, 'target'), path);
  log.write('after\n');
  log.close();
  assert.equal(log.droppedLines, 1);
  assert.equal(readFileSync(join(dir, 'target'), 'utf8'), 'secret\n');
});

test('a log file owned by another user is not written, even when everybody may write it (issue #14)', { skip: process.getuid?.() !== 0 ? 'needs root to chown to another user' : false }, () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, 'theirs\n');
  chmodSync(path, 0o666);
  chownSync(path, 65534, 65534);
  const problems: string[] = [];
  const log = new RotatingLogFile({ path, maxFileBytes: 1000, maxFiles: 3, onProblem: (m) => problems.push(m) });
  log.write('root only\n');
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'theirs\n');
  assert.equal(log.droppedLines, 1);
  assert.match(problems[0] ?? '', new RegExp(`unsafe file: ${path} is owned by uid 65534 \\(regular file, mode 0666\\)`));
});

test('a removed log directory is created again and nothing is written into the deleted file', () => {
  const dir = join(freshDir(), 'logs');
  const path = join(dir, 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 10_000, maxFiles: 2 });
  log.write('before\n');
  rmSync(dir, { recursive: true });
  log.write('after\n');
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'after\n');
  assert.equal(log.droppedLines, 0);
});

test('a log directory replaced by a file drops lines (ENOTDIR) until it is a directory again', () => {
  const dir = join(freshDir(), 'logs');
  const path = join(dir, 'daemon.log');
  const problems: string[] = [];
  const log = new RotatingLogFile({ path, maxFileBytes: 10_000, maxFiles: 2, onProblem: (m) => problems.push(m) });
  log.write('before\n');
  rmSync(dir, { recursive: true });
  writeFileSync(dir, 'not a directory');
  assert.doesNotThrow(() => {
    log.write('lost 1\n');
    log.write('lost 2\n');
  });
  assert.equal(log.droppedLines, 2);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /ENOTDIR/);
  unlinkSync(dir);
  log.write('after\n');
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'autopilotd: dropped 2 log lines (ENOTDIR)\nafter\n');
});

test('a read-only log directory drops lines (EACCES) without throwing, then recovers', async () => {
  // Root ignores directory permissions, so when we are root the writer runs as nobody.
  const asRoot = process.getuid?.() === 0;
  const dir = freshDir();
  const path = join(dir, 'daemon.log');
  chmodSync(dir, 0o555);
  const script = `
    const { RotatingLogFile } = await import(process.env.LOG_FILE_MODULE);
    const problems = [];
    const log = new RotatingLogFile({ path: process.env.LOG_PATH, maxFileBytes: 10000, maxFiles: 2, onProblem: (m) => problems.push(m) });
    for (const line of ['one\\n', 'two\\n', 'three\\n']) log.write(line);
    process.stdout.write(JSON.stringify({ dropped: log.droppedLines, problems }) + '\\n');
    process.stdin.once('data', () => {
      log.write('four\\n');
      log.close();
      process.stdout.write(JSON.stringify({ dropped: log.droppedLines }) + '\\n');
      process.exit(0);
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, LOG_FILE_MODULE, LOG_PATH: path },
    stdio: ['pipe', 'pipe', 'inherit'],
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  track(child);
  const reports = collectLines(child.stdout, (l) => JSON.parse(l) as unknown);
  await waitFor(() => reports.length === 1, 'the writer to report its first three writes');
  const first = reports[0] as { dropped: number; problems: string[] };
  assert.equal(first.dropped, 3);
  assert.equal(first.problems.length, 1);
  assert.match(first.problems[0] ?? '', /EACCES/);

  chmodSync(dir, 0o777);
  const exited = once(child, 'exit');
  child.stdin?.write('go\n');
  await waitFor(() => reports.length === 2, 'the writer to report its write after recovery');
  assert.deepEqual(reports[1], { dropped: 3 });
  assert.equal(((await exited) as [number | null])[0], 0);
  assert.equal(readFileSync(path, 'utf8'), 'autopilotd: dropped 3 log lines (EACCES)\nfour\n');
});

test('two processes appending to the same file do not clobber each other', async () => {
  const path = join(freshDir(), 'daemon.log');
  const linesPerWriter = 2000;
  const script = `
    const { RotatingLogFile } = await import(process.env.LOG_FILE_MODULE);
    const log = new RotatingLogFile({ path: process.env.LOG_PATH, maxFileBytes: 100 * 1024 * 1024, maxFiles: 2 });
    for (let i = 0; i < ${linesPerWriter}; i += 1) log.write(process.env.WRITER + ' ' + i + ' ' + 'y'.repeat(200) + '\\n');
    log.close();
  `;
  const writers = ['a', 'b'].map((name) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, LOG_FILE_MODULE, LOG_PATH: path, WRITER: name },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    track(child);
    return once(child, 'exit') as Promise<[number | null]>;
  });
  for (const [code] of await Promise.all(writers)) assert.equal(code, 0);
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 2 * linesPerWriter);
  for (const name of ['a', 'b']) {
    const mine = lines.filter((l) => l.startsWith(name + ' ')).map((l) => l.split(' '));
    assert.deepEqual(
      mine.map(([, i, tail]) => [Number(i), tail?.length]),
      Array.from({ length: linesPerWriter }, (_, i) => [i, 200]),
    );
  }
});

test('the constructor rejects sizes that cannot work', () => {
  const path = join(tempRoot, 'never.log');
  assert.throws(() => new RotatingLogFile({ path, maxFileBytes: 0, maxFiles: 2 }), RangeError);
  assert.throws(() => new RotatingLogFile({ path, maxFileBytes: 100, maxFiles: 0 }), RangeError);
  assert.throws(() => new RotatingLogFile({ path, maxFileBytes: 1.5, maxFiles: 2 }), RangeError);
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
