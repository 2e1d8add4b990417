// The event journal behind `subscribe`: every entry the log writes becomes an event numbered from 1
// with its time, the last 100 are kept for a new subscriber, the worker's own output is not an
// event, the log level applies, and `events` prints an event exactly as the log file shows it.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { EVENT_BACKLOG, formatEventLine, type StreamEvent } from '../../src/control/events-protocol.js';
import { EventJournal } from '../../src/daemon/event-journal.js';
import { Logger } from '../../src/log/logger.js';

function setup(level: 'debug' | 'info' | 'warn' = 'info'): { logger: Logger; journal: EventJournal; written: string[]; clock: { ms: number } } {
  const written: string[] = [];
  const clock = { ms: Date.UTC(2025, 0, 2, 3, 4, 5, 678) };
  const logger = new Logger({ write: (line) => written.push(line) }, 'plain', level, () => clock.ms);
  return { logger, journal: new EventJournal(logger), written, clock };
}

test('events are numbered from 1 with their time, level, kind and the log line text', () => {
  const { logger, journal } = setup();
  logger.emit({ kind: 'worker-spawned', generation: 3, pid: 42, argv: ['node', 'w.mjs'], cwd: '/x y' });
  logger.line('warn', 'a plain line');
  assert.deepEqual(journal.backlog(), [
    { seq: 1, at: '2025-01-02T03:04:05.678Z', level: 'info', kind: 'worker-spawned', text: 'worker spawned generation=3 pid=42 argv=[node,w.mjs] cwd="/x y"' },
    { seq: 2, at: '2025-01-02T03:04:05.678Z', level: 'warn', kind: null, text: 'a plain line' },
  ] satisfies StreamEvent[]);
  assert.equal(journal.lastSeq, 2);
});

test('the human form of an event is the log file line, character for character', () => {
  const { logger, journal, written } = setup('debug');
  logger.emit({ kind: 'tree-kill-sent', pids: [7, 8], afterMs: 10_000 });
  logger.emit({ kind: 'memory-sample', level: 'ok', availableBytes: 1 << 30, treeRssBytes: 1 << 20, treeSwapBytes: 0, treeProcesses: 2, nextPollMs: 5000 });
  logger.emit({ kind: 'internal-error', message: 'two\nlines' });
  assert.deepEqual(journal.backlog().map((e) => `${formatEventLine(e)}\n`), written);
});

test('the worker\'s output is not an event, and levels below the log level are not either', () => {
  const { logger, journal } = setup('warn');
  logger.workerOutput('worker[1] ', ['out 1', 'out 2']);
  logger.emit({ kind: 'worker-state', from: 'starting', to: 'running' }); // info: not logged at warn
  logger.emit({ kind: 'tree-survivors-left', pids: [9] });
  assert.deepEqual(journal.backlog().map((e) => [e.seq, e.kind]), [[1, 'tree-survivors-left']]);
  logger.setLevel('info');
  logger.emit({ kind: 'worker-state', from: 'running', to: 'stopping' });
  assert.deepEqual(journal.backlog().map((e) => [e.seq, e.kind]), [[1, 'tree-survivors-left'], [2, 'worker-state']]);
});

test(`the backlog keeps the last ${EVENT_BACKLOG}; an attached listener gets each later event once, until detached`, () => {
  const { logger, journal } = setup();
  for (let i = 1; i <= 250; i++) logger.line('info', `line ${i}`);
  const backlog = journal.backlog();
  assert.equal(backlog.length, EVENT_BACKLOG);
  assert.deepEqual([backlog[0]!.seq, backlog.at(-1)!.seq], [151, 250]);
  const heard: number[] = [];
  const attached = journal.attach((e) => heard.push(e.seq));
  assert.deepEqual(attached.backlog.map((e) => e.seq), backlog.map((e) => e.seq));
  logger.line('info', 'live 1');
  logger.line('info', 'live 2');
  attached.detach();
  logger.line('info', 'after');
  assert.deepEqual(heard, [251, 252]);
  assert.equal(journal.subscriberCount, 0);
});

test('a listener that throws does not stop the others or the logger', (t) => {
  const { logger, journal } = setup();
  const stderr = t.mock.method(process.stderr, 'write', () => true);
  const heard: number[] = [];
  journal.attach(() => {
    throw new Error('boom');
  });
  journal.attach((e) => heard.push(e.seq));
  logger.line('info', 'x');
  assert.deepEqual(heard, [1]);
  assert.match(String(stderr.mock.calls[0]?.arguments[0]), /event subscriber threw: Error: boom/);
});
