// One line per entry, whatever its text holds: a stack trace or a reload error listing several
// problems has its newlines written as a literal `\n`, so journald's `<N>` prefix covers the whole
// entry and `logs -n`, `grep` and line-based readers see entries whole (issue #15, item 9). Daemon
// entries are one write each; the worker's output is handed on a chunk's worth at a time. Two
// styles: `plain` (timestamp and level, for a terminal or a file) and `journald` (a `<N>` syslog
// priority prefix, no timestamp: journald adds its own).

import { fstatSync, writeSync } from 'node:fs';
import { FORMATS, LOG_LEVELS, renderEvent, type LogEvent, type LogLevel } from './events.js';
import { escapeForTerminal } from './terminal-text.js';
import { isoTime } from './iso-time.js';

export interface LineSink {
  /** `line` ends with '\n'. Must not throw. */
  write(line: string): void;
  /**
   * `text` is `lines` whole lines, each ending with '\n', that may be written later (batched, or
   * dropped and counted when writing falls behind). Without it they go to `write` at once.
   */
  writeSoon?(text: string, lines: number): void;
  /** Lines lost over the sink's life because they could not be written (a running total). */
  readonly droppedLines?: number;
}

export type LogStyle = 'plain' | 'journald';

const SYSLOG_PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const LEVEL_LABEL: Record<LogLevel, string> = { error: 'ERROR', warn: 'WARN ', info: 'INFO ', debug: 'DEBUG' };

/**
 * One of the daemon's own log entries, as subscribe() listeners hear it. The worker's output is
 * never one: it goes to the sink only (it is the hot path, and no listener wants it).
 */
export interface LogRecord {
  readonly atMs: number;
  readonly level: LogLevel;
  /** The one-line text; for an event below the log level it is only rendered if read. */
  readonly text: string;
  readonly event: LogEvent | null;
}

export class Logger {
  private minRank: number;
  private readonly listeners = new Set<(r: LogRecord) => void>();
  /** The plain style's timestamp, made once per millisecond rather than once per line. */
  private stampMs = Number.NaN;
  private stamp = '';

  constructor(
    private readonly sink: LineSink,
    private readonly style: LogStyle,
    minLevel: LogLevel = 'info',
    private readonly now: () => number = Date.now,
  ) {
    this.minRank = LOG_LEVELS.indexOf(minLevel);
  }

  setLevel(level: LogLevel): void {
    this.minRank = LOG_LEVELS.indexOf(level);
  }

  /** True when lines of `level` are written; callers skip building costly events otherwise. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.minRank;
  }

  emit(event: LogEvent): void {
    const level = FORMATS[event.kind].level;
    if (this.enabled(level)) {
      this.record(level, renderEvent(event).text, event);
      return;
    }
    // Disabled levels cost one lookup, and nothing is formatted: listeners (metrics, the notifier)
    // still hear the event, and its text is rendered only if one of them reads it.
    if (this.listeners.size === 0) return;
    let text: string | null = null;
    const record: LogRecord = {
      atMs: this.now(), level, event,
      get text() { return (text ??= oneLine(renderEvent(event).text)); },
    };
    for (const listener of this.listeners) listener(record);
  }

  /** A line that is not a daemon event. */
  line(level: LogLevel, text: string): void {
    this.record(level, text, null);
  }

  /**
   * The worker's own output, each of `lines` (no newlines in them) after `prefix`: always written,
   * whatever the daemon's log level, in one `writeSoon` for all of them. Not passed to listeners.
   */
  workerOutput(prefix: string, lines: readonly string[]): void {
    if (lines.length === 0) return;
    const atMs = this.now();
    const head = this.style === 'journald' ? `<${SYSLOG_PRIORITY.info}>${prefix}` : `${this.stampFor(atMs)} ${LEVEL_LABEL.info} ${prefix}`;
    // One native join rather than a concatenation per line.
    const text = `${head}${lines.join(`\n${head}`)}\n`;
    if (this.sink.writeSoon) this.sink.writeSoon(text, lines.length);
    else this.sink.write(text);
  }

  subscribe(listener: (r: LogRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(level: LogLevel, multiLineText: string, event: LogEvent | null): void {
    const atMs = this.now();
    const text = oneLine(multiLineText);
    if (this.listeners.size > 0) {
      const record: LogRecord = { atMs, level, text, event };
      for (const listener of this.listeners) listener(record);
    }
    if (!this.enabled(level)) return;
    this.sink.write(this.style === 'journald'
      ? `<${SYSLOG_PRIORITY[level]}>${text}\n`
      : `${this.stampFor(atMs)} ${LEVEL_LABEL[level]} ${text}\n`);
  }

  private stampFor(atMs: number): string {
    if (atMs !== this.stampMs) {
      this.stampMs = atMs;
      this.stamp = isoTime(atMs);
    }
    return this.stamp;
  }
}

/**
 * `text` as one line: trailing newlines go, the others (CRLF too) become a literal `\n`. A
 * backslash already in the text is left alone: the escape is for reading, like terminal-text.ts's.
 */
export function oneLine(text: string): string {
  if (!text.includes('\n')) return text;
  return text.replace(/[\r\n]+$/, '').replace(/\r?\n/g, '\\n');
}

/**
 * True when file descriptor `fd` is the stream journald gave us: systemd sets JOURNAL_STREAM to
 * "<device>:<inode>" of the stream it connected, and we compare it with what `fd` is now (a shell
 * redirect under systemd leaves the variable but changes the fd).
 */
export function isJournaldStream(env: Record<string, string | undefined>, fd = 2): boolean {
  const value = env.JOURNAL_STREAM;
  if (!value) return false;
  const [dev, ino] = value.split(':');
  if (!dev || !ino) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(dev) && st.ino === BigInt(ino);
  } catch {
    return false; // fd closed: certainly not journald's stream
  }
}

/**
 * Writes to stderr. After EPIPE (the reader is gone: `| head`, a closed terminal) output becomes a
 * no-op instead of crashing the daemon. Any other error (ENOSPC on a redirected file, EIO) is not
 * swallowed: `onProblem` hears of it once, lines are then written straight to the fd, dropped and
 * counted while that fails, and the first line that gets through is preceded by how many were lost
 * (since the last such notice; `droppedLines` keeps the total, for the metrics).
 * On a terminal, control characters in a line are made visible (a worker's error text or path in
 * an event must not drive the terminal); to a pipe, a file or journald lines go unchanged.
 */
export function stderrSink(
  stream: Pick<NodeJS.WriteStream, 'on' | 'write' | 'isTTY'> & { fd?: number } = process.stderr,
  onProblem: (message: string) => void = () => {},
): LineSink {
  const toTerminal = stream.isTTY === true;
  const fd = stream.fd ?? 2;
  let state: 'stream' | 'direct' | 'gone' = 'stream';
  /** Lines dropped since the last notice; the running total is `droppedBefore + dropped`. */
  let dropped = 0;
  let droppedBefore = 0;
  let droppedErrno = '';
  const failed = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'EPIPE') {
      state = 'gone';
      return;
    }
    if (droppedErrno === '') {
      droppedErrno = err.code ?? 'EIO';
      onProblem(`cannot write to stderr: ${err.message}; dropping log lines until writing works again`);
    }
  };
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (state === 'stream') state = 'direct';
    if (err.code !== 'EPIPE') dropped += 1; // at least the line whose write failed
    failed(err);
  });
  return {
    get droppedLines() {
      return droppedBefore + dropped;
    },
    write(line) {
      const text = toTerminal ? escapeForTerminal(line) : line;
      if (state === 'stream') {
        stream.write(text);
        return;
      }
      if (state === 'gone') return;
      try {
        const notice = droppedErrno === '' ? '' : `autopilotd: dropped ${dropped} log lines (${droppedErrno})\n`;
        writeSync(fd, notice + text);
        droppedBefore += dropped;
        dropped = 0;
        droppedErrno = '';
      } catch (err) {
        dropped += 1;
        failed(err as NodeJS.ErrnoException);
      }
    },
  };
}
