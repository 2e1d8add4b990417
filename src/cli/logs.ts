// `autopilotd logs [-n N] [-f]`: the daemon and worker log file (when not under journald).

import { existsSync } from 'node:fs';
import { ControlError } from '../control/protocol.js';
import { readLastLines } from '../os/log-tail.js';
import { followFile } from '../os/log-follow.js';
import { escapeForTerminal } from '../log/terminal-text.js';
import { daemonLogPath } from '../daemon/log-path.js';
import type { ParsedCommand } from './args.js';
import { findDaemon, loadToFindDaemon, type ConfigForFinding } from './find-daemon.js';
import { CliFailure, EXIT, UsageError } from './exit-codes.js';
import { unitNameOf } from './service-unit.js';

export async function logsCommand(p: ParsedCommand): Promise<number> {
  const found = await loadToFindDaemon(p);
  const { config } = found.loaded;
  const lines = typeof p.values.lines === 'string' ? Number(p.values.lines) : 50;
  if (!Number.isInteger(lines) || lines < 0) throw new UsageError(`logs: -n expects a whole number, got '${String(p.values.lines)}'`);
  // A running daemon says where it logs; the file may be stale from an earlier detached run, and
  // logs.dir in the file may have changed (or broken) since the daemon started.
  const target = await runningLogTarget(found);
  const path = target !== null && target.startsWith('/') ? target : daemonLogPath(config);
  // The unit install-service writes for this daemon: autopilotd, or autopilotd@NAME for an instance.
  const journalctl = `journalctl --user -u ${unitNameOf(typeof p.values.instance === 'string' ? p.values.instance : null)}`;
  if (target === 'journald') {
    throw new CliFailure(`the daemon logs to the journal: ${journalctl} (add -f to follow)`, EXIT.failure);
  }
  if (target === 'stderr') {
    throw new CliFailure('the daemon runs in the foreground and logs to the terminal that started it; it keeps no log file', EXIT.failure);
  }
  if (!existsSync(path) && !p.values.follow) {
    throw new CliFailure(`no log file at ${path}.\nUnder systemd the daemon logs to the journal: ${journalctl}`, EXIT.failure);
  }
  const abort = new AbortController();
  const stopFollowing = (): void => abort.abort();
  const print = linePrinter(process.stdout, stopFollowing);
  if (!p.values.follow) {
    print(readLastLines(path, lines, config.logs.max_files));
    return EXIT.ok;
  }
  process.once('SIGINT', stopFollowing);
  process.once('SIGTERM', stopFollowing);
  // The follower prints the last lines itself, from the file it then follows: no gap, no overlap.
  await followFile(path, print, abort.signal, 200, { initialLines: lines, maxFiles: config.logs.max_files });
  return EXIT.ok;
}

/**
 * Writes lines to `out`, one write per batch. To a terminal, control characters in them (worker
 * output may hold ESC, CR, NUL) are made visible; to a pipe or file the text goes unchanged, for
 * scripts. A reader that went away (`logs -n 200000 | head -1`: EPIPE) ends the output quietly, as
 * for cat; `onClosed` is called so that a follow stops too. Any other write error is reported.
 */
function linePrinter(out: NodeJS.WriteStream, onClosed: () => void): (batch: string[]) => void {
  const toTerminal = out.isTTY === true;
  let closed = false;
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (closed) return;
    closed = true;
    onClosed();
    if (err.code === 'EPIPE') return;
    process.stderr.write(`autopilotd: logs: cannot write the output: ${err.message}\n`);
    process.exitCode = EXIT.failure;
  });
  return (batch) => {
    if (closed || batch.length === 0) return;
    const text = `${batch.join('\n')}\n`;
    out.write(toTerminal ? escapeForTerminal(text) : text);
  };
}

/** The running daemon's log target, or null when none answers (then the file is all there is). */
async function runningLogTarget(target: ConfigForFinding): Promise<string | null> {
  try {
    return (await findDaemon(target, 2000))?.status.daemon.log_target ?? null;
  } catch (err) {
    if (err instanceof ControlError) return null; // not answering: show the file
    throw err; // a configuration too broken to tell which daemon's file to show
  }
}
