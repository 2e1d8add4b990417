// `status` and `metrics` the quick way (issue #19, figures): at the location an earlier command
// noted (location-cache.ts), in a bundle of their own (dist/bin/quick.cjs) that holds only the
// socket client, the note and the status text. No configuration stack, no /proc table, none of the
// other commands' code: what a process compiles costs its start even when it never runs. Anything
// the note cannot answer goes the full way (control-commands.ts), with the same semantics.

import { dirname } from 'node:path';
import { isatty } from 'node:tty';
import { sendRequest } from '../control/client.js';
import { ControlError, type StatusData } from '../control/protocol.js';
import { escapeForTerminal } from '../log/terminal-text.js';
import { checkPrivateDir } from '../os/private-dir.js';
import { configFlagsOf, type ParsedCommand } from './args.js';
import { CliFailure, EXIT } from './exit-codes.js';
import type { FoundDaemon } from './find-daemon.js';
import { formatStatus } from './format-status.js';
import { notedLocation } from './location-cache.js';
import { writeOut } from './output-writer.js';

/**
 * A plain `status` or a `metrics` answered at the noted location; null when there is no note, or
 * its socket's directory is not private, or no daemon answers there (nothing listens, or the
 * connection closed unanswered), or the command asks for more (`--watch`, `--interval`): the full
 * way then decides. The answer itself shows that a daemon is there: one round trip. A daemon that
 * is there but answers badly (a timeout, an error reply) fails the command as the full way would:
 * trying again there would cost a hung daemon's timeout twice.
 */
export async function quickCommand(p: ParsedCommand): Promise<number | null> {
  const plain = p.command === 'metrics' || (p.command === 'status' && p.values.watch === undefined && p.values.interval === undefined);
  if (!plain) return null;
  const noted = notedLocation(configFlagsOf(p));
  if (noted === null || checkPrivateDir(dirname(noted.socket_path)) !== null) return null;
  let data: unknown;
  try {
    data = await sendRequest(noted.socket_path, p.command === 'status' ? 'status' : 'metrics');
  } catch (err) {
    if (!(err instanceof ControlError) || NO_DAEMON_THERE.has(err.code)) return null;
    throw new CliFailure(`${p.command} failed: ${err.message} (${err.code})`, EXIT.failure);
  }
  return p.command === 'status' ? printStatus(p, { socketPath: noted.socket_path, status: data as StatusData }) : printMetrics(data);
}

/** What says that no daemon answers at the noted socket (it moved, or exited): the full way looks. */
const NO_DAEMON_THERE = new Set(['not_running', 'disconnected']);

/** Exit 0 while the worker is supervised as it should be, 4 once it is `failed`. */
export function printStatus(p: ParsedCommand, found: FoundDaemon): number {
  if (p.values.json === true) {
    writeOut(`${JSON.stringify({ running: true, ...found.status }, null, 2)}\n`);
  } else {
    // The worker's argv and spawn error are anybody's text: escaped on a terminal, as logs are.
    const human = formatStatus(found.status, Date.now());
    writeOut(isatty(1) ? escapeForTerminal(human) : human);
  }
  return found.status.worker.state === 'failed' ? EXIT.workerFailed : EXIT.ok;
}

export function printMetrics(data: unknown): number {
  const text = (data as { text?: unknown }).text;
  if (typeof text !== 'string') throw new CliFailure('metrics: the daemon sent no metrics text (an older daemon? restart it)', EXIT.failure);
  writeOut(text);
  return EXIT.ok;
}
