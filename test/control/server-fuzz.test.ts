// Throws hostile and broken clients at a real server at once, then checks it still serves.
// Reproduce a failure with CONTROL_FUZZ_SEED=<seed printed in the failure message>.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { sendRequest } from '../../src/control/client.js';
import { COMMANDS, ControlError, ERROR_CODES, type Command } from '../../src/control/protocol.js';
import { fixture, prng, waitFor } from './harness.js';

const SEED = Number(process.env['CONTROL_FUZZ_SEED'] ?? 0x5eed2024);
const CLIENTS = 200;
const MAX_LINE_BYTES = 4096;

type Scenario = 'random_bytes' | 'huge_line' | 'partial_then_vanish' | 'pipelined' | 'mixed' | 'connect_and_leave' | 'silent';
const SCENARIOS: Scenario[] = [
  'random_bytes',
  'huge_line',
  'partial_then_vanish',
  'pipelined',
  'mixed',
  'connect_and_leave',
  'silent',
];

interface Outcome {
  scenario: Scenario;
  lines: string[];
  /** Ids of valid requests, in the order sent; their replies must come back in this order. */
  expectedIds: number[];
  /** How many replies the client must get (unless refused as busy); -1: not predictable. */
  expectedReplies: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Complete lines the server must answer: all but blank ones (which it ignores). */
function answerableLines(bytes: Buffer): number {
  const segments: Buffer[] = [];
  for (let start = 0, nl = bytes.indexOf(10); nl !== -1; start = nl + 1, nl = bytes.indexOf(10, start)) {
    segments.push(bytes.subarray(start, nl));
  }
  return segments.filter((segment) => {
    try {
      return utf8.decode(segment).trim() !== '';
    } catch {
      return true; // invalid UTF-8 gets a bad_json reply
    }
  }).length;
}

function runClient(socketPath: string, rand: () => number, index: number): Promise<Outcome> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const scenario = pick(SCENARIOS);
  const outcome: Outcome = { scenario, lines: [], expectedIds: [], expectedReplies: -1 };
  // Plan all bytes up front so the PRNG sequence does not depend on network timing.
  const chunks: Buffer[] = [];
  let finish: 'end' | 'destroy' | 'wait' = 'end';
  const request = (cmd: Command): string => {
    const id = 1_000_000 + index * 100 + outcome.expectedIds.length;
    outcome.expectedIds.push(id);
    return `${JSON.stringify({ v: 1, id, cmd, args: { r: rand() } })}\n`;
  };
  switch (scenario) {
    case 'random_bytes': {
      const bytes = Buffer.alloc(1 + Math.floor(rand() * 6000));
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = rand() < 0.01 ? 10 : Math.floor(rand() * 256);
      chunks.push(bytes);
      outcome.expectedReplies = answerableLines(bytes);
      break;
    }
    case 'huge_line':
      chunks.push(Buffer.from(request('status')), Buffer.alloc((1 + Math.floor(rand() * 4)) * 256 * 1024, 0x61));
      finish = 'wait';
      break;
    case 'partial_then_vanish':
      outcome.expectedReplies = 0;
      chunks.push(Buffer.from('{"v":1,"id":1,"cmd":"sta'.slice(0, 1 + Math.floor(rand() * 24))));
      finish = 'destroy';
      break;
    case 'pipelined': {
      let text = '';
      for (let n = 1 + Math.floor(rand() * 10); n > 0; n -= 1) text += request(pick(COMMANDS));
      outcome.expectedReplies = outcome.expectedIds.length;
      // Split at random byte offsets, including inside lines.
      const bytes = Buffer.from(text);
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + Math.floor(rand() * 200);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      break;
    }
    case 'mixed':
      chunks.push(Buffer.from(`${request('status')}{"v":1,"id":\n[]\n{"v":9,"id":"x"}\n${request(pick(COMMANDS))}`));
      outcome.expectedReplies = 5;
      break;
    case 'silent':
      // Says nothing or half a line, then waits: the idle timeout must close it (and so hold
      // slots long enough that later clients meet the connection limit).
      if (rand() < 0.5) chunks.push(Buffer.from('{"v":1,'));
      outcome.expectedReplies = 1;
      finish = 'wait';
      break;
    case 'connect_and_leave':
      outcome.expectedReplies = 0;
      finish = 'destroy';
      break;
  }

  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      buffer += text;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        outcome.lines.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    // EPIPE/ECONNRESET are expected when the server cuts a client off mid-send.
    socket.on('error', () => {});
    socket.on('close', () => resolve(outcome));
    socket.once('connect', async () => {
      try {
        for (const chunk of chunks) {
          if (socket.destroyed) break;
          socket.write(chunk);
          await new Promise((r) => setImmediate(r));
        }
        if (finish === 'destroy') socket.destroy();
        else if (finish === 'end') socket.end();
      } catch (err) {
        reject(err);
      }
    });
  });
}

function checkOutcome(o: Outcome, where: string): void {
  const replies = o.lines.map((line) => {
    const reply = JSON.parse(line);
    assert.equal(reply.v, 1, where);
    if (!reply.ok) assert.ok((ERROR_CODES as readonly string[]).includes(reply.error.code), `${where}: ${line}`);
    return reply;
  });
  const refused = replies.length === 1 && replies[0].id === null && ['busy', 'shutting_down'].includes(replies[0].error?.code);
  if (refused) return;
  // Replies to valid requests arrive in the order sent.
  const ids = replies.map((r) => r.id).filter((id) => o.expectedIds.includes(id));
  assert.deepEqual(ids, o.expectedIds.slice(0, ids.length), `${where}: replies out of order`);
  if (o.expectedReplies >= 0) {
    assert.equal(replies.length, o.expectedReplies, `${where}: ${JSON.stringify(o.lines)}`);
  }
  const codes = replies.map((r) => (r.ok ? 'ok' : r.error.code));
  if (o.scenario === 'mixed') {
    assert.deepEqual(codes.slice(1, 4), ['bad_json', 'bad_request', 'unsupported_version'], where);
  }
  if (o.scenario === 'silent') assert.deepEqual(codes, ['timeout'], where);
  if (o.scenario === 'huge_line') {
    // The client may see EPIPE on its unfinished send before reading everything: a prefix is fine.
    assert.deepEqual(codes, ['ok', 'line_too_long'].slice(0, codes.length), where);
  }
}

describe('fuzz', () => {
  it(`survives ${CLIENTS} simultaneous hostile clients and still answers status (seed ${SEED})`, async (t) => {
    const f = fixture(t);
    const rand = prng(SEED);
    const server = await f.start({
      maxConnections: 16,
      idleTimeoutMs: 300,
      requestTimeoutMs: 300,
      maxLineBytes: MAX_LINE_BYTES,
      handler: async (cmd) => {
        await new Promise((r) => setImmediate(r));
        if (cmd === 'reload') throw new ControlError('invalid_config', 'fuzz');
        if (cmd === 'shutdown') throw new Error('fuzz internal');
        return { cmd };
      },
    });
    const outcomes = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => runClient(f.socketPath, rand, i)));
    outcomes.forEach((o, i) => checkOutcome(o, `seed ${SEED}, client ${i} (${o.scenario})`));
    await waitFor(() => server.connectionCount === 0, `all connections to be closed (seed ${SEED})`);

    const seen = new Set(outcomes.map((o) => o.scenario));
    assert.equal(seen.size, SCENARIOS.length, `seed ${SEED} did not exercise every scenario`);
    assert.deepEqual(await sendRequest(f.socketPath, 'status'), { cmd: 'status' });
    const stats = server.stats;
    assert.equal(stats.accepted + stats.rejectedBusy, CLIENTS + 1);
    assert.ok(stats.rejectedBusy + stats.evictedIdle > 0, 'no client met the connection limit');
    assert.ok(stats.idleTimeouts > 0, 'no client was closed for idling');
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(stats)}`);
  });
});
