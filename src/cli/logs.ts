// `autopilotd logs [-n N] [-f] [--stream S] [--since WHEN] [--json]`: the daemon and worker log
// file (when not under journald), filtered and as JSON lines if asked.

import { existsSync } from 'node:fs';
import { ControlError } from '../control/protocol.js';
import { readLastLines } from '../os/log-tail.js';
import { followFile } from '../os/log-follow.js';
import { commandOutput } from './output-writer.js';
import { lineFilter, logLineJson, parseLogLine, type LineFilter } from '../log/log-line.js';
import { parseSince, streamOf } from './option-values.js';
import { daemonLogPath } from '../daemon/log-path.js';
import type { ParsedCommand } from './args.js';
import { findDaemon, loadToFindDaemon, type ConfigForFinding } from './find-daemon.js';
import { CliFailure, EXIT } from './exit-codes.js';
import { unitNameOf } from './service-unit.js';

export async function logsCommand(p: ParsedCommand): Promise<number> {
  const found = await loadToFindDaemon(p);
  const { config } = found.loaded;
  const filter = filterOf(p, Date.now());
  const filtering = filter.stream !== undefined || filter.sinceMs !== undefined;
  // --since alone shows every line since then; with -n, the last N of those.
  const lines = typeof p.values.lines === 'string' ? Number(p.values.lines) : filter.sinceMs !== undefined ? Number.MAX_SAFE_INTEGER : 50;
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
  const print = shaper(filter, p.values.json === true, linePrinter(process.stdout, stopFollowing));
  // Filtered, the last N shown are the last N that pass: every line kept is read to find them.
  const readLines = filtering ? Number.MAX_SAFE_INTEGER : lines;
  const initial = (batch: string[]): void => print(batch, lines);
  if (!p.values.follow) {
    initial(readLastLines(path, readLines, config.logs.max_files));
    return EXIT.ok;
  }
  process.once('SIGINT', stopFollowing);
  process.once('SIGTERM', stopFollowing);
  // The follower reads the last lines itself, from the file it then follows: no gap, no overlap.
  await followFile(path, (batch) => print(batch, Number.MAX_SAFE_INTEGER), abort.signal, 200, {
    initialLines: readLines, maxFiles: config.logs.max_files, onInitialLines: initial,
  });
  return EXIT.ok;
}

/** --stream and --since (judged as the command line was read: option-values.ts). */
export function filterOf(p: ParsedCommand, nowMs: number): LineFilter {
  const filter: LineFilter = {};
  if (typeof p.values.stream === 'string') filter.stream = streamOf(p.values.stream);
  if (typeof p.values.since === 'string') filter.sinceMs = parseSince(p.values.since, nowMs);
  return filter;
}

/**
 * Lines as shown: filtered (the filter keeps its place across batches), the last `keep` of a
 * batch, and one JSON object each with --json. Unfiltered plain lines go through untouched.
 */
function shaper(filter: LineFilter, json: boolean, print: (batch: string[]) => void): (batch: string[], keep: number) => void {
  if (filter.stream === undefined && filter.sinceMs === undefined && !json) return (batch) => print(batch); // already the last N
  const passes = lineFilter(filter);
  return (batch, keep) => {
    const shown: string[] = [];
    for (const raw of batch) {
      const line = parseLogLine(raw);
      if (passes(line)) shown.push(json ? logLineJson(line) : raw);
    }
    print(keep >= shown.length ? shown : shown.slice(shown.length - keep));
  };
}

/** Writes lines to `out`, one write per batch (commandOutput: escaped on a terminal; EPIPE ends it quietly). */
function linePrinter(out: NodeJS.WriteStream, onClosed: () => void): (batch: string[]) => void {
  const write = commandOutput(out, 'logs', onClosed);
  return (batch) => {
    if (batch.length > 0) write(`${batch.join('\n')}\n`);
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
