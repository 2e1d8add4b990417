// Reading back the lines the plain logger writes: what `logs --stream/--since/--json` rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Logger, type LineSink } from '../../src/log/logger.js';
import { lineFilter, parseLogLine } from '../../src/log/log-line.js';

const at = Date.parse('2026-11-25T10:00:00.000Z');

/** Lines exactly as the daemon's plain logger writes them, without '\n'. */
function written(write: (log: Logger) => void, now = () => at): string[] {
  const lines: string[] = [];
  const sink: LineSink = { write: (l) => lines.push(...l.slice(0, -1).split('\n')) };
  write(new Logger(sink, 'plain', 'debug', now));
  return lines;
}

test('daemon lines and worker lines of each stream parse back into time, level, source, stream, generation and text', () => {
  const lines = written((log) => {
    log.emit({ kind: 'tree-gone', durationMs: 5 });
    log.emit({ kind: 'worker-spawn-failed', generation: 1, reason: 'no such file' });
    log.workerOutput('worker[3] ', ['out line', '']);
    // A worker line that imitates a stderr prefix stays a stdout line: the prefix is the first bracket.
    log.workerOutput('worker[3,stderr] ', ['err line worker[9] x']);
    log.workerOutput('worker[3] ', ['worker[3,stderr] fake']);
  });
  assert.deepEqual(lines.map(parseLogLine), [
    { time: '2026-11-25T10:00:00.000Z', level: 'info', source: 'daemon', stream: null, generation: null, text: 'worker tree gone took_ms=5' },
    { time: '2026-11-25T10:00:00.000Z', level: 'error', source: 'daemon', stream: null, generation: null, text: 'worker spawn failed: no such file generation=1' },
    { time: '2026-11-25T10:00:00.000Z', level: 'info', source: 'worker', stream: 'stdout', generation: 3, text: 'out line' },
    { time: '2026-11-25T10:00:00.000Z', level: 'info', source: 'worker', stream: 'stdout', generation: 3, text: '' },
    { time: '2026-11-25T10:00:00.000Z', level: 'info', source: 'worker', stream: 'stderr', generation: 3, text: 'err line worker[9] x' },
    { time: '2026-11-25T10:00:00.000Z', level: 'info', source: 'worker', stream: 'stdout', generation: 3, text: 'worker[3,stderr] fake' },
  ]);
});

test('a line in no known shape (a dropped-lines notice) is kept whole, with no time or level', () => {
  assert.deepEqual(parseLogLine('autopilotd: dropped 3 log lines (ENOSPC)'),
    { time: null, level: null, source: 'daemon', stream: null, generation: null, text: 'autopilotd: dropped 3 log lines (ENOSPC)' });
});

test('the filter keeps a stream, and lines since a time; a line with no time goes with the line before it', () => {
  let now = at;
  const lines = written((log) => {
    log.workerOutput('worker[1] ', ['early out']);
    now = at + 60_000;
    log.workerOutput('worker[1,stderr] ', ['late err']);
    log.line('info', 'late daemon');
  }, () => now);
  const all = [...lines.slice(0, 1), 'autopilotd: dropped 1 log lines (EIO)', ...lines.slice(1), 'autopilotd: dropped 2 log lines (EIO)'].map(parseLogLine);
  const texts = (f: Parameters<typeof lineFilter>[0]): string[] => all.filter(lineFilter(f)).map((l) => l.text);
  assert.deepEqual(texts({ stream: 'stderr' }), ['late err']);
  assert.deepEqual(texts({ stream: 'stdout' }), ['early out']);
  assert.deepEqual(texts({ sinceMs: at + 1 }), ['late err', 'late daemon', 'autopilotd: dropped 2 log lines (EIO)']);
  assert.deepEqual(texts({ sinceMs: at }), all.map((l) => l.text));
  assert.deepEqual(texts({ sinceMs: at + 1, stream: 'stdout' }), []);
});
