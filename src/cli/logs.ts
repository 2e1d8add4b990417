// `autopilotd logs [-n N] [-f]`: the daemon and worker log file (when not under journald).

import { existsSync } from 'node:fs';
import { readLastLines } from '../os/log-tail.js';
import { followFile } from '../os/log-follow.js';
import { daemonLogPath } from '../daemon/log-path.js';
import { loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT, UsageError } from './exit-codes.js';

export async function logsCommand(p: ParsedCommand): Promise<number> {
  const { config } = await loadForCommand(p, { findDaemonOnly: true });
  const lines = typeof p.values.lines === 'string' ? Number(p.values.lines) : 50;
  if (!Number.isInteger(lines) || lines < 0) throw new UsageError(`logs: -n expects a whole number, got '${String(p.values.lines)}'`);
  const path = daemonLogPath(config);
  if (!existsSync(path) && !p.values.follow) {
    throw new CliFailure(`no log file at ${path}.\nUnder systemd the daemon logs to the journal: journalctl --user -u autopilotd`, EXIT.failure);
  }
  const print = (batch: string[]): void => {
    for (const line of batch) process.stdout.write(`${line}\n`);
  };
  if (!p.values.follow) {
    print(readLastLines(path, lines, config.logs.max_files));
    return EXIT.ok;
  }
  const abort = new AbortController();
  const stopFollowing = (): void => abort.abort();
  process.once('SIGINT', stopFollowing);
  process.once('SIGTERM', stopFollowing);
  // The follower prints the last lines itself, from the file it then follows: no gap, no overlap.
  await followFile(path, print, abort.signal, 200, { initialLines: lines, maxFiles: config.logs.max_files });
  return EXIT.ok;
}
