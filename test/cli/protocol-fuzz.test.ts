// Hostile and broken clients against a real daemon: random bytes, lines over 64 KiB, partial
// lines, clients that vanish mid-line or before their reply, and 200 clients at once. Afterwards
// the daemon still answers, its worker was never touched, and no connection is left open.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import * as net from 'node:net';
import { ERROR_CODES, type StatusData } from '../../src/control/protocol.js';
import { exchange, type Exchange } from '../helpers/raw-socket.js';
import { sandbox } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';
import { prng } from '../control/harness.js';

const MAX_LINE_BYTES = 65_536;
const CLIENTS = 200;

// Fragments that get past JSON.parse now and then, so validation is fuzzed too. No action command
// appears: whatever the fuzzer assembles can at worst ask for status.
const TOKENS = ['{', '}', '[', ']', ':', ',', '"v"', '"id"', '"cmd"', '"args"', '"status"', '"nope"', '1', '2', 'null', '"', '\\', '\n', ' ', '\r\n', '\u00e9', '\ufeff'];

function fuzzPayload(next: () => number): Buffer {
  const parts: Buffer[] = [];
  const pieces = 1 + Math.floor(next() * 200);
  for (let i = 0; i < pieces; i++) {
    if (next() < 0.4) parts.push(randomBytesFrom(next, 1 + Math.floor(next() * 64)));
    else parts.push(Buffer.from(TOKENS[Math.floor(next() * TOKENS.length)]!, 'utf8'));
  }
  return Buffer.concat(parts);
}

function randomBytesFrom(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

/** Replies the protocol owes for `payload`: one per complete line, except lines that are blank text. */
function owedReplies(payload: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let owed = 0;
  let start = 0;
  for (let nl = payload.indexOf(10); nl !== -1; nl = payload.indexOf(10, start)) {
    const line = payload.subarray(start, nl);
    start = nl + 1;
    try {
      if (decoder.decode(line).trim() !== '') owed += 1;
    } catch {
      owed += 1; // not UTF-8: a bad_json reply
    }
  }
  return owed;
}

function assertWellFormed(line: string, context: string): Record<string, any> {
  const reply = JSON.parse(line) as Record<string, any>;
  assert.equal(reply.v, 1, context);
  if (reply.ok === true) assert.equal(typeof reply.data.daemon.pid, 'number', context);
  else assert.ok((ERROR_CODES as readonly string[]).includes(reply.error.code) && typeof reply.error.message === 'string', `${context}: ${line}`);
  return reply;
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Connects and vanishes: after writing `data` (if any), without reading or ending politely. */
function vanish(path: string, data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    socket.on('error', reject);
    socket.once('connect', () => {
      if (data === '') {
        socket.destroy();
        resolve();
      } else socket.write(data, () => {
        socket.destroy();
        resolve();
      });
    });
  });
}

test('a real daemon survives random bytes, huge and partial lines, vanishing clients and 200 clients at once; status still answers and the worker is untouched', async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? randomBytes(4).readUInt32LE(0));
  const box = sandbox(t);
  const { pid, workerPid } = await box.start();
  const path = box.socketPath;
  await box.status();
  const baselineFds = fdCount(pid);

  // Random payloads on 40 connections, 10 at a time: each owed line gets exactly one reply.
  const next = prng(seed);
  const payloads = Array.from({ length: 40 }, () => fuzzPayload(next));
  for (let i = 0; i < payloads.length; i += 10) {
    const batch = payloads.slice(i, i + 10);
    const results = await Promise.all(batch.map((p) => exchange(path, [p])));
    results.forEach((r, j) => {
      const context = `seed ${seed}, payload ${i + j} (${batch[j]!.toString('base64')})`;
      assert.equal(r.lines.length, owedReplies(batch[j]!), context);
      assert.equal(r.trailing, '', context);
      for (const line of r.lines) assertWellFormed(line, context);
    });
  }

  // Over the line limit, with or without a newline, even as valid JSON: refused, connection closed,
  // and the request after it is never run.
  const huge: [string, (string | Buffer)[]][] = [
    ['no newline', [Buffer.alloc(MAX_LINE_BYTES * 2, 'a')]],
    ['then a newline and a request', [Buffer.alloc(MAX_LINE_BYTES + 10, 'b'), '\n{"v":1,"id":2,"cmd":"status"}\n']],
    ['valid JSON', [`{"v":1,"id":"${'c'.repeat(MAX_LINE_BYTES)}","cmd":"status"}\n`]],
    ['in many small writes', Array.from({ length: 80 }, () => Buffer.alloc(1024, 'd'))],
  ];
  for (const [what, chunks] of huge) {
    const r = await exchange(path, chunks, { end: false });
    assert.equal(r.lines.length, 1, `${what}: ${JSON.stringify(r)}`);
    const reply = assertWellFormed(r.lines[0]!, what);
    assert.deepEqual([reply.id, reply.error?.code], [null, 'line_too_long'], what);
  }

  // A partial line then end: nothing to answer, the daemon closes. A request dripped byte by byte works.
  const partial = await exchange(path, ['{"v":1,"id":1,"cmd":"sta']);
  assert.deepEqual([partial.lines, partial.trailing], [[], '']);
  const request = '{"v":1,"id":"drip","cmd":"status"}\n';
  const drip = await exchange(path, [...request].map((ch) => ch));
  assert.equal(assertWellFormed(drip.lines[0]!, 'drip').id, 'drip');

  // Clients that vanish: before sending, mid-line, right after a request (its reply has nowhere to go).
  await Promise.all([
    ...Array.from({ length: 20 }, () => vanish(path, '')),
    ...Array.from({ length: 20 }, () => vanish(path, '{"v":1,"id":1,"cm')),
    ...Array.from({ length: 20 }, () => vanish(path, '{"v":1,"id":1,"cmd":"status"}\n')),
  ]);

  // 200 clients at once: each gets its status or a busy refusal, never silence. A client answered
  // before it ended its side is idle until it does, so it may be the one closed (with a busy note
  // after its status) to let a newcomer in.
  const crowd: Exchange[] = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => exchange(path, [`{"v":1,"id":${i},"cmd":"status"}\n`])));
  let answered = 0;
  crowd.forEach((r, i) => {
    const context = `client ${i}: ${JSON.stringify(r)}`;
    assert.ok(r.lines.length === 1 || r.lines.length === 2, context);
    const reply = assertWellFormed(r.lines[0]!, `client ${i}`);
    if (reply.ok) {
      assert.equal(reply.id, i);
      answered += 1;
    } else assert.deepEqual([reply.id, reply.error.code, r.lines.length], [null, 'busy', 1], context);
    if (r.lines.length === 2) {
      const note = assertWellFormed(r.lines[1]!, `client ${i}`);
      assert.deepEqual([note.ok, note.id, note.ok ? null : note.error.code], [false, null, 'busy'], context);
    }
  });
  assert.ok(answered >= 1, 'some of the crowd got their status');

  const after = await box.cli(['status', '--json']);
  assert.equal(after.code, 0, after.stderr);
  const s = JSON.parse(after.stdout) as StatusData;
  assert.deepEqual([s.daemon.pid, s.worker.state, s.worker.pid, s.worker.generation, s.restarts.total], [pid, 'running', workerPid, 1, 0], 'the worker was never touched');
  await waitFor(() => `the daemon's fds to return to ${baselineFds} (now ${fdCount(pid)})`, () => fdCount(pid) <= baselineFds);
  assert.doesNotMatch(box.log(), /internal error|handler_error|ERROR/, 'no internal error was logged');
  assert.equal((await box.cli(['stop'])).code, 0);
});
