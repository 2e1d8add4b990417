// Reading back the plain style's lines (logger.ts) for `logs --stream/--since/--json`: a daemon line
// is `<ISO time> <LEVEL> <text>`; a worker's is the same with its text after `worker[N] ` (stdout)
// or `worker[N,stderr] `. A line in neither shape (a dropped-lines notice) is kept whole as the
// daemon's, with no time or level of its own.

import { LOG_LEVELS, type LogLevel } from './events.js';

export interface LogLine {
  /** ISO 8601, UTC, as written; null when the line has none. */
  time: string | null;
  level: LogLevel | null;
  source: 'daemon' | 'worker';
  /** The worker stream; null for daemon lines. */
  stream: 'stdout' | 'stderr' | null;
  /** The worker's generation; null for daemon lines. */
  generation: number | null;
  text: string;
}

const PLAIN = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (ERROR|WARN |INFO |DEBUG) (.*)$/s;
const WORKER = /^worker\[(\d+)(,stderr)?\] (.*)$/s;

export function parseLogLine(line: string): LogLine {
  const plain = PLAIN.exec(line);
  if (plain === null) return { time: null, level: null, source: 'daemon', stream: null, generation: null, text: line };
  const level = plain[2]!.trimEnd().toLowerCase() as LogLevel;
  const rest = plain[3]!;
  const worker = WORKER.exec(rest);
  if (worker === null) return { time: plain[1]!, level: LOG_LEVELS.includes(level) ? level : null, source: 'daemon', stream: null, generation: null, text: rest };
  return { time: plain[1]!, level, source: 'worker', stream: worker[2] === undefined ? 'stdout' : 'stderr', generation: Number(worker[1]), text: worker[3]! };
}

export interface LineFilter {
  /** Only this worker stream's lines. */
  stream?: 'stdout' | 'stderr';
  /** Only lines written at or after this time (ms since the epoch). */
  sinceMs?: number;
}

/**
 * A predicate over successive lines: a line with no time of its own (a notice) is judged by the
 * time of the line before it, so that it stays with its neighbours.
 */
export function lineFilter(filter: LineFilter): (line: LogLine) => boolean {
  let lastMs = Number.NEGATIVE_INFINITY;
  return (line) => {
    if (line.time !== null) lastMs = Date.parse(line.time);
    if (filter.stream !== undefined && line.stream !== filter.stream) return false;
    return filter.sinceMs === undefined || lastMs >= filter.sinceMs;
  };
}

/** One JSON object, the `logs --json` line. */
export function logLineJson(line: LogLine): string {
  return JSON.stringify(line);
}
