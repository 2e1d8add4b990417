// `status --watch`: the status again every interval. On a terminal it redraws in place, as watch(1)
// and `pm2 monit` do; otherwise successive blocks (or JSON lines with --json), for a log or a pipe.
// A daemon that goes away is shown as such and looked for again; Ctrl-C, or a reader that went
// away, ends it with exit 0 and the terminal as it was (cursor shown, prompt on a fresh line).

import type { StatusData } from '../control/protocol.js';
import { escapeForTerminal } from '../log/terminal-text.js';
import { formatDuration, formatStatus } from './format-status.js';
import { EXIT } from './exit-codes.js';
import { commandOutput } from './output-writer.js';

export const HIDE_CURSOR = '\x1b[?25l';
export const SHOW_CURSOR = '\x1b[?25h';
/** Cursor to the top left; each line then clears what the last frame left to its right. */
export const CURSOR_HOME = '\x1b[H';
export const CLEAR_LINE_END = '\x1b[K';
export const CLEAR_SCREEN_END = '\x1b[J';

/** One look at the daemon: its status, or why there is none (no daemon, no answer). */
export type Look = { status: StatusData } | { absent: string };

export interface WatchOptions {
  intervalMs: number;
  json: boolean;
  look: () => Promise<Look>;
  out?: NodeJS.WriteStream;
}

/**
 * Exit 0 on Ctrl-C and when the reader went away (`status --watch | head -2`: EPIPE, as for
 * watch(1)); 1, after one line on stderr, when the output cannot be written (ENOSPC). The terminal
 * is restored (cursor shown) however the loop ends, a look that throws included.
 */
export async function watchStatus(o: WatchOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  // JSON lines stay plain even on a terminal: they are for a program.
  const redraw = out.isTTY === true && !o.json;
  // Set once the output ended: true when it failed, false when the reader went away.
  const output: { failed: boolean | null; ended: (() => void) | null } = { failed: null, ended: null };
  const write = commandOutput(out, 'status', (failed) => {
    output.failed = failed;
    output.ended?.();
  });
  // Text already escaped where it must be (frame, block): written as is.
  const say = (text: string): void => write(text, true);
  const restore = (): void => {
    if (redraw) say(`${SHOW_CURSOR}\n`);
  };
  // Ctrl-C may come while a look waits on the socket: restore and leave at once, exit 0 (the
  // usual way to end a watch is no failure). SIGTERM and SIGHUP likewise leave the terminal clean.
  const leave = (): void => {
    restore();
    process.exit(0);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.once(signal, leave);
  try {
    if (redraw) say(`${HIDE_CURSOR}${CURSOR_HOME}\x1b[2J`);
    while (output.failed === null) {
      const look = await o.look();
      if (output.failed !== null) break;
      const nowMs = Date.now();
      if (o.json) say(`${JSON.stringify(jsonOf(look, nowMs))}\n`);
      else if (redraw) say(frame(escapeForTerminal(block(look, o.intervalMs, nowMs)), { columns: out.columns ?? 0, rows: out.rows ?? 0 }));
      else say(`${block(look, o.intervalMs, nowMs)}\n`);
      // The interval, cut short when the output ends meanwhile.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, o.intervalMs);
        output.ended = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      output.ended = null;
    }
  } finally {
    for (const signal of signals) process.off(signal, leave);
    restore();
  }
  return output.failed === true ? EXIT.failure : EXIT.ok;
}

/**
 * One screen: from the top left, every line cleared to its end, then the rest of the screen. Lines
 * are cut to the terminal's width and the frame to its height: a wrapped or scrolled frame would
 * not be overwritten in place by the next one.
 */
function frame(text: string, size: { columns: number; rows: number }): string {
  const width = size.columns > 0 ? size.columns : Infinity;
  const height = size.rows > 1 ? size.rows - 1 : Infinity;
  const lines = text.replace(/\n$/, '').split('\n').slice(0, height).map((l) => (l.length > width ? l.slice(0, width) : l));
  return `${CURSOR_HOME}${lines.map((l) => `${l}${CLEAR_LINE_END}`).join('\n')}\n${CLEAR_SCREEN_END}`;
}

function block(look: Look, intervalMs: number, nowMs: number): string {
  const head = `Every ${formatDuration(intervalMs)}: autopilotd status    ${new Date(nowMs).toISOString()}\n`;
  if ('absent' in look) return `${head}autopilotd is not running (${look.absent}); looking again every ${formatDuration(intervalMs)}\n`;
  return `${head}${formatStatus(look.status, nowMs)}`;
}

function jsonOf(look: Look, nowMs: number): Record<string, unknown> {
  if ('absent' in look) return { at: new Date(nowMs).toISOString(), running: false, reason: look.absent };
  return { at: new Date(nowMs).toISOString(), running: true, ...look.status };
}
