// What the control server reports, as log events in words: an internal structure is never logged
// raw (issue #19: a `control: {"type":"connection_error",...}` line). The switch is exhaustive, so a
// new kind of server event cannot reach the log without a text of its own.

import type { ControlServerEvent } from '../control/server.js';
import type { LogEvent } from '../log/events.js';

/** The log event for a control server event: warnings for what went wrong, debug notes for the rest. */
export function controlEventLog(e: ControlServerEvent): LogEvent {
  const note = (message: string): LogEvent => ({ kind: 'control-note', message });
  switch (e.type) {
    case 'subscriber_dropped': return { kind: 'events-subscriber-dropped', bufferedBytes: e.bufferedBytes, limitBytes: e.limitBytes, sent: e.sent };
    case 'handler_error': return { kind: 'control-error', message: `${e.cmd} failed: ${e.message}` };
    case 'handler_timeout': return { kind: 'control-error', message: `${e.cmd} still running after ${e.timeoutMs} ms; the client was told to check status` };
    case 'connection_error': return { kind: 'control-error', message: `connection error ${e.errno}: ${e.message}` };
    case 'request_failed': return note(`request refused (${e.code}): ${e.message}`);
    case 'idle_timeout': return note('connection closed after its idle timeout');
    case 'request_timeout': return note(`request line not finished in time (${e.bytes} bytes read); connection closed`);
    case 'partial_line_dropped': return note(`client went away mid-request; ${e.bytes} bytes of it dropped`);
    case 'reply_dropped': return note(`reply not delivered: ${e.reason}`);
    case 'listening': return note(`listening on ${e.socketPath}`);
    case 'stale_socket_removed': return note(`stale socket removed: ${e.socketPath}`);
    case 'connection_rejected': return note(`connection refused: ${e.reason} (${e.connections} open)`);
    case 'connection_evicted': return note(`idle connection closed after ${e.idleMs} ms to admit a new one (${e.connections} open)`);
    case 'closed': return note(`socket closed${e.unlinked ? ' and removed' : ''}: ${e.socketPath}`);
  }
}
