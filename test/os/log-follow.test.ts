import assert from 'node:assert/strict';
import { spawn,  } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFileSync,
  closeSync,
  
  
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RotatingLogFile } from '../../src/os/log-file.js';
import { followFile } from '../../src/os/log-follow.js';
import { scratchArea } from '../helpers/scratch.js';

const LOG_FILE_MODULE = new URL('../../src/os/log-file.js', import.meta.url).href;
const { freshDir, track } = scratchArea('autopilotd-logfollow-test-');

function seqLine(seq: number): string {
  return `seq ${seq} ${'z'.repeat(40)}`;
}

function seqOf(line: string): number {
  const match = /^seq (\d+) z+$/.exec(line);
  if (match === null) throw new Error(`not a sequence line: ${JSON.stringify(line)}`);
  return Number(match[1]);
}

/** For timeout messages: how many lines arrived and where the sequence first breaks. */
function describeSequences(lines: string[]): string {
  const sequences = lines.map(seqOf);
  const breakAt = sequences.findIndex((seq, i) => seq !== i);
  return breakAt === -1
    ? `${lines.length} lines, all in sequence`
    : `${lines.length} lines, first out of sequence at index ${breakAt}: ${sequences.slice(Math.max(0, breakAt - 2), breakAt + 3).join(',')}`;
}

async function waitFor(condition: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Follows `path` into an array until the returned stop() is called. */
function startFollowing(path: string, pollMs: number, options: Parameters<typeof followFile>[4] = {}) {
  const lines: string[] = [];
  const batches: string[][] = [];
  const controller = new AbortController();
  const done = followFile(
    path,
    (batch) => {
      batches.push(batch);
      lines.push(...batch);
    },
    controller.signal,
    pollMs,
    options,
  );
  return {
    lines,
    batches,
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

test('followFile delivers lines appended after it started, and only complete lines', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, 'old 1\nold 2\nstarted befo');
  const follow = startFollowing(path, 20);
  try {
    appendFileSync(path, 're\nnew 1\npart');
    await waitFor(() => follow.lines.length >= 2, () => `2 lines, got ${JSON.stringify(follow.lines)}`);
    appendFileSync(path, 'ial\n');
    await waitFor(() => follow.lines.length >= 3, () => `3 lines, got ${JSON.stringify(follow.lines)}`);
  } finally {
    await follow.stop();
  }
  assert.deepEqual(follow.lines, ['started before', 'new 1', 'partial']);
});

test('followFile with initialLines delivers the last lines, then appends, with no gap or overlap', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(`${path}.1`, 'r1\nr2\n');
  writeFileSync(path, 'c1\nc2\n');
  const follow = startFollowing(path, 20, { initialLines: 3, maxFiles: 2 });
  try {
    await waitFor(() => follow.lines.length >= 3, () => `3 backlog lines, got ${JSON.stringify(follow.lines)}`);
    appendFileSync(path, 'c3\n');
    await waitFor(() => follow.lines.length >= 4, () => `4 lines, got ${JSON.stringify(follow.lines)}`);
  } finally {
    await follow.stop();
  }
  assert.deepEqual(follow.lines, ['r2', 'c1', 'c2', 'c3']);
});

test('followFile waits for a missing file and reads it from its start once it appears', async () => {
  const path = join(freshDir(), 'daemon.log');
  const follow = startFollowing(path, 20);
  try {
    writeFileSync(path, 'first\nsecond\n');
    await waitFor(() => follow.lines.length >= 2, () => `2 lines, got ${JSON.stringify(follow.lines)}`);
  } finally {
    await follow.stop();
  }
  assert.deepEqual(follow.lines, ['first', 'second']);
});

test('followFile reads a file that appears and rotates before the first poll from its first line, ignoring older rotated files', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(`${path}.1`, 'from an earlier run\n');
  const follow = startFollowing(path, 50, { maxFiles: 100 });
  const log = new RotatingLogFile({ path, maxFileBytes: 256, maxFiles: 100 });
  const total = 100;
  try {
    for (let seq = 0; seq < total; seq += 1) log.write(seqLine(seq) + '\n'); // ~20 rotations, one burst.
    await waitFor(() => follow.lines.length >= total, () => `${total} lines, got ${describeSequences(follow.lines)}`);
  } finally {
    log.close();
    await follow.stop();
  }
  assert.deepEqual(follow.lines.map(seqOf), Array.from({ length: total }, (_, i) => i));
});

test('followFile starts over when the file is truncated in place', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, 'x'.repeat(100) + '\n');
  const follow = startFollowing(path, 20);
  try {
    appendFileSync(path, 'before truncation\n');
    await waitFor(() => follow.lines.length >= 1, () => `1 line, got ${JSON.stringify(follow.lines)}`);
    truncateSync(path, 0);
    appendFileSync(path, 'after\n');
    await waitFor(() => follow.lines.length >= 2, () => `2 lines, got ${JSON.stringify(follow.lines)}`);
  } finally {
    await follow.stop();
  }
  assert.deepEqual(follow.lines, ['before truncation', 'after']);
});

test('followFile sees every line exactly once across many rotations between two polls', async () => {
  const path = join(freshDir(), 'daemon.log');
  const log = new RotatingLogFile({ path, maxFileBytes: 1024, maxFiles: 200 });
  log.write('written before following\n');
  const follow = startFollowing(path, 20, { maxFiles: 200 });
  const total = 1000;
  try {
    // Each synchronous burst rotates ~20 times before the follower can poll again.
    for (let seq = 0; seq < total; seq += 1) {
      log.write(seqLine(seq) + '\n');
      if (seq % 400 === 399) await waitFor(() => follow.lines.length === seq + 1, () => `${seq + 1} lines, got ${follow.lines.length}`);
    }
    await waitFor(() => follow.lines.length >= total, () => `${total} lines, got ${describeSequences(follow.lines)}`);
  } finally {
    log.close();
    await follow.stop();
  }
  assert.ok(readdirSync(join(path, '..')).length > 40, 'the writer did not rotate enough for the test to mean anything');
  assert.deepEqual(follow.lines.map(seqOf), Array.from({ length: total }, (_, i) => i));
});

test('followFile sees every line exactly once while another process writes and rotates', async () => {
  const path = join(freshDir(), 'daemon.log');
  const total = 3000;
  writeFileSync(path, '');
  const follow = startFollowing(path, 5, { maxFiles: 500 }); // Frequent polls: more chances to catch a rotation midway.
  // Bursts with pauses, like a real daemon; maxFiles leaves room for a follower slowed by load.
  const script = `
    const { RotatingLogFile } = await import(process.env.LOG_FILE_MODULE);
    const log = new RotatingLogFile({ path: process.env.LOG_PATH, maxFileBytes: 2048, maxFiles: 500 });
    for (let seq = 0; seq < ${total}; seq += 1) {
      log.write('seq ' + seq + ' ' + 'z'.repeat(40) + '\\n');
      if (seq % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    log.close();
  `;
  const writer = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, LOG_FILE_MODULE, LOG_PATH: path },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  track(writer);
  try {
    const [code] = (await once(writer, 'exit')) as [number | null];
    assert.equal(code, 0, 'writer process failed');
    await waitFor(() => follow.lines.length >= total, () => `${total} lines, got ${describeSequences(follow.lines)}`);
  } finally {
    await follow.stop();
  }
  assert.ok(readdirSync(join(path, '..')).length > 50, 'the writer did not rotate enough for the test to mean anything');
  assert.deepEqual(follow.lines.map(seqOf), Array.from({ length: total }, (_, i) => i));
});

test('followFile does not lose a file when it looks while the writer is halfway through a rotation', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, 'c0\n');
  const follow = startFollowing(path, 20, { maxFiles: 10 });
  try {
    appendFileSync(path, 'c1\n');
    await waitFor(() => follow.lines.length >= 1, () => `c1, got ${JSON.stringify(follow.lines)}`);
    // While the test holds the event loop, the writer rotates twice and starts a third rotation:
    // it has moved the oldest file up, leaving a hole at path.2, but not yet the others.
    appendFileSync(path, 'c2\n');
    renameSync(path, `${path}.1`);
    writeFileSync(path, 'k1\n');
    renameSync(`${path}.1`, `${path}.2`);
    renameSync(path, `${path}.1`);
    writeFileSync(path, 'm1\n');
    renameSync(`${path}.2`, `${path}.3`);
    await waitFor(() => follow.lines.length >= 4, () => `4 lines, got ${JSON.stringify(follow.lines)}`);
  } finally {
    await follow.stop();
  }
  assert.deepEqual(follow.lines, ['c1', 'c2', 'k1', 'm1']);
});

test('aborting stops following at once, without waiting for the poll interval, and closes the file', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, '');
  const follow = startFollowing(path, 10_000); // A long poll: abort must not wait for it.
  await waitFor(() => openFdTargets().includes(path), () => `the follower to open ${path}`);
  const startedAtMs = Date.now();
  await follow.stop();
  assert.ok(Date.now() - startedAtMs < 5000, 'abort waited for the poll interval');
  assert.equal(openFdTargets().includes(path), false, 'the followed file is still open');
});

test('followFile with an already aborted signal returns at once without reading', async () => {
  const path = join(freshDir(), 'daemon.log');
  writeFileSync(path, 'a\n');
  const controller = new AbortController();
  controller.abort();
  let calls = 0;
  await followFile(path, () => (calls += 1), controller.signal, 10, { initialLines: 5 });
  assert.equal(calls, 0);
});

/** Paths this process has open, from /proc/self/fd. */
function openFdTargets(): string[] {
  const targets: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      targets.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch (err) {
      // The fd used to list the directory is gone by the time we read it: a result, not an error.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return targets;
}

// The abort test's "file is closed" check is only as good as this helper.
test('the /proc/self/fd helper sees a file this process opens and not one it closed', () => {
  const path = join(freshDir(), 'probe.log');
  writeFileSync(path, '');
  const fd = openSync(path, 'r');
  try {
    assert.ok(openFdTargets().includes(path));
  } finally {
    closeSync(fd);
  }
  assert.equal(openFdTargets().includes(path), false);
});
