// `autopilotd events [-f] [--json]`: the daemon's last events (up to 100) from its event stream,
// as the log shows them or one JSON object per line; -f stays and prints each new one until Ctrl-C.

import { formatEventLine, type StreamEvent } from '../control/events-protocol.js';
import { subscribeEvents } from '../control/subscribe-client.js';
import { commandOutput } from './output-writer.js';
import type { ParsedCommand } from './args.js';
import { CliFailure, EXIT } from './exit-codes.js';
import type { FoundDaemon } from './find-daemon.js';

export async function eventsCommand(p: ParsedCommand, found: FoundDaemon): Promise<number> {
  const json = p.values.json === true;
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  const print = eventPrinter(process.stdout, json, stop);
  // Ctrl-C (or a SIGTERM) while following is how one leaves: a clean exit 0.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const { end } = await subscribeEvents(found.socketPath, { follow: p.values.follow === true, onEvent: print, signal: abort.signal });
    if (end?.reason === 'too_slow') throw new CliFailure(`events: the daemon stopped sending: ${end.message}`, EXIT.failure);
    if (end?.reason === 'shutting_down') process.stderr.write('autopilotd: the daemon is shutting down; no more events\n');
    return EXIT.ok;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** Writes each event to `out` (commandOutput: escaped on a terminal; a reader gone ends it quietly). */
function eventPrinter(out: NodeJS.WriteStream, json: boolean, onClosed: () => void): (event: StreamEvent) => void {
  const write = commandOutput(out, 'events', onClosed);
  return (event) => write(json ? `${JSON.stringify(event)}\n` : `${formatEventLine(event)}\n`, json);
}
