// The CLI's end of a `subscribe` stream: sends the request, checks the reply, then hands each event
// on until the daemon ends the stream, the connection drops, or the caller aborts.

import * as net from 'node:net';
import { connectError } from './client.js';
import { parseStreamLine, type StreamEnd, type StreamEvent } from './events-protocol.js';
import { ControlError, encodeRequest, isProtocolFailure } from './protocol.js';

export interface SubscribeOptions {
  follow: boolean;
  onEvent(event: StreamEvent): void;
  /** Aborting ends the subscription quietly (Ctrl-C). */
  signal?: AbortSignal;
  /** For the reply to the request; without follow, for the whole stream to end. Default 15000. */
  replyTimeoutMs?: number;
}

/** How the stream ended: the daemon's end line, or null when the caller aborted. */
export interface SubscribeResult {
  end: StreamEnd | null;
}

/** One line this long is a broken daemon, not an event. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export function subscribeEvents(socketPath: string, opts: SubscribeOptions): Promise<SubscribeResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let replied = false;
    let end: StreamEnd | null = null;
    let settled = false;
    const finish = (err: ControlError | null, result?: SubscribeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(result!);
    };
    const onAbort = (): void => finish(null, { end: null });
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    const timeoutMs = opts.replyTimeoutMs ?? 15_000;
    let timer = setTimeout(() => finish(new ControlError('timeout', `no reply to subscribe from ${socketPath} within ${timeoutMs} ms`)), timeoutMs);

    const onLine = (line: string): void => {
      const parsed = parseStreamLine(line);
      if (isProtocolFailure(parsed)) return finish(new ControlError('internal', `${socketPath}: ${parsed.message}`));
      if (parsed.type === 'reply') {
        if (!parsed.reply.ok) return finish(new ControlError(parsed.reply.error.code, parsed.reply.error.message));
        replied = true;
        clearTimeout(timer);
        // Without follow the daemon sends the backlog and the end at once: a stream that does not
        // end is a daemon that hangs, and `events` must not wait for it forever.
        if (!opts.follow) {
          timer = setTimeout(() => finish(new ControlError('timeout', `the events from ${socketPath} did not end within ${timeoutMs} ms`)), timeoutMs);
        }
        return undefined;
      }
      if (!replied) return finish(new ControlError('internal', `${socketPath}: an event came before the reply to subscribe`));
      if (parsed.type === 'event') return opts.onEvent(parsed.event);
      end = parsed.end;
      return undefined;
    };

    socket.once('connect', () => socket.write(encodeRequest(1, 'subscribe', { follow: opts.follow })));
    socket.on('data', (chunk: Buffer) => {
      for (let nl = chunk.indexOf(10); nl !== -1 && !settled; nl = chunk.indexOf(10)) {
        pending.push(chunk.subarray(0, nl));
        const line = Buffer.concat(pending).toString('utf8');
        pending = [];
        pendingBytes = 0;
        chunk = chunk.subarray(nl + 1);
        onLine(line);
      }
      if (settled || chunk.length === 0) return;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes > MAX_LINE_BYTES) finish(new ControlError('internal', `a line from ${socketPath} exceeds ${MAX_LINE_BYTES} bytes`));
    });
    socket.on('close', () => {
      if (end !== null) return finish(null, { end });
      finish(new ControlError('disconnected', `${socketPath} closed the connection ${replied ? 'without ending the stream' : 'before replying to subscribe'}`));
    });
    // A reset after the end line (the daemon cut a lingering socket) loses nothing.
    socket.on('error', (err: NodeJS.ErrnoException) => (end !== null ? finish(null, { end }) : finish(connectError(err, socketPath))));
  });
}
