// One client connection: splits bytes into bounded lines, runs requests one at a time and writes
// replies in request order. Memory per connection stays bounded: the socket is paused while
// unprocessed input piles up, and the next request waits while the client is not reading replies.
import type { Socket } from 'node:net';
import {
  ControlError,
  encodeReply,
  errorReply,
  isProtocolFailure,
  okReply,
  parseRequest,
  type Command,
  type ErrorCode,
  type Reply,
} from './protocol.js';

export type CommandHandler = (cmd: Command, args: Record<string, unknown>) => Promise<unknown>;

/** What a connection reports; the server turns these into its events. */
export type ConnectionEvent =
  | { type: 'request_failed'; code: ErrorCode; message: string }
  | { type: 'handler_error'; cmd: Command; message: string }
  | { type: 'idle_timeout' }
  | { type: 'partial_line_dropped'; bytes: number }
  | { type: 'reply_dropped'; reason: string }
  | { type: 'connection_error'; errno: string; message: string };

export interface ConnectionOptions {
  handler: CommandHandler;
  idleTimeoutMs: number;
  maxLineBytes: number;
  report: (event: ConnectionEvent) => void;
  onClose: () => void;
}

type Item = { kind: 'line'; bytes: Buffer } | { kind: 'too_long' };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** How long a connection ended by the server (line too long, idle) may stay open for its client to read the reply. */
export const REJECT_LINGER_MS = 1_000;

export class Connection {
  private readonly partial: Buffer[] = [];
  private partialBytes = 0;
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private pumping = false;
  /** No more requests will be read: peer ended, line too long, idle, or server closing. */
  private inputDone = false;
  private draining = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** We called end(); calling it again (or destroy) could cut off replies still being flushed. */
  private ending = false;
  readonly whenClosed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.whenClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      // Half-close: `echo '{...}' | nc -U` ends its side and still waits for the reply.
      // Requests must end with a newline; an unfinished line here is a client that went away.
      if (this.partialBytes > 0 && !this.inputDone) {
        opts.report({ type: 'partial_line_dropped', bytes: this.partialBytes });
      }
      this.stopInput();
      this.finishIfDone();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // EPIPE/ECONNRESET: the client left. Reported, and the 'close' that follows cleans up.
      opts.report({ type: 'connection_error', errno: err.code ?? 'unknown', message: err.message });
    });
    socket.on('close', () => {
      this.closed = true;
      this.clearIdle();
      this.queue.length = 0;
      this.partial.length = 0;
      opts.onClose();
    });
    this.armIdle();
  }

  /** Server shutdown: answer what was read with `shutting_down`, finish the running request, end. */
  drain(): void {
    this.draining = true;
    this.stopInput();
    this.finishIfDone();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.inputDone) return;
    this.clearIdle();
    const max = this.opts.maxLineBytes;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.partialBytes + piece.length > max) return this.lineTooLong();
      const bytes = this.partialBytes === 0 ? piece : Buffer.concat([...this.partial, piece]);
      this.partial.length = 0;
      this.partialBytes = 0;
      this.queue.push({ kind: 'line', bytes });
      this.queuedBytes += bytes.length;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      // Refuse as soon as the unfinished line exceeds the limit; never buffer it whole.
      if (this.partialBytes + rest.length > max) return this.lineTooLong();
      this.partial.push(rest);
      this.partialBytes += rest.length;
    }
    if (this.queuedBytes > max) this.socket.pause();
    // pump() arms the idle timer once nothing is pending, including after a partial line.
    this.schedule();
  }

  private lineTooLong(): void {
    this.queue.push({ kind: 'too_long' });
    this.stopInput();
    this.schedule();
  }

  private stopInput(): void {
    this.inputDone = true;
    this.partial.length = 0;
    this.partialBytes = 0;
    this.clearIdle();
    this.socket.pause();
  }

  private schedule(): void {
    this.pump().catch((err: unknown) => {
      // A bug in this file, not client input: report it and drop only this connection.
      const message = err instanceof Error ? err.stack ?? err.message : String(err);
      this.opts.report({ type: 'connection_error', errno: 'internal', message });
      this.socket.destroy();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    this.clearIdle();
    try {
      for (let item = this.queue.shift(); item && !this.closed; item = this.queue.shift()) {
        if (item.kind === 'too_long') {
          this.opts.report({ type: 'request_failed', code: 'line_too_long', message: 'line too long' });
          const msg = `request line exceeds ${this.opts.maxLineBytes} bytes; closing connection`;
          this.endWith(errorReply(null, 'line_too_long', msg));
          return;
        }
        this.queuedBytes -= item.bytes.length;
        if (!this.inputDone && this.queuedBytes <= this.opts.maxLineBytes) this.socket.resume();
        const reply = await this.answer(item.bytes);
        if (reply === null) continue;
        if (!this.write(reply)) await this.writable();
      }
    } finally {
      this.pumping = false;
    }
    this.finishIfDone();
    if (!this.inputDone && !this.closed) this.armIdle();
  }

  /** The reply for one line, or null for a blank line (ignored, as keep-alive noise). */
  private async answer(bytes: Buffer): Promise<Reply | null> {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      return this.failed(errorReply(null, 'bad_json', 'request line is not valid UTF-8'));
    }
    if (text.trim() === '') return null;
    const request = parseRequest(text);
    if (isProtocolFailure(request)) return this.failed(errorReply(request.id, request.code, request.message));
    if (this.draining) return this.failed(errorReply(request.id, 'shutting_down', 'the daemon is shutting down'));
    try {
      // Call inside try: a non-async handler may throw synchronously.
      return okReply(request.id, await this.opts.handler(request.cmd, request.args));
    } catch (err) {
      if (err instanceof ControlError) return errorReply(request.id, err.code, err.message);
      const message = err instanceof Error ? err.message : String(err);
      this.opts.report({ type: 'handler_error', cmd: request.cmd, message });
      return errorReply(request.id, 'internal', `internal error in ${request.cmd}: ${message}`);
    }
  }

  private failed(reply: Reply): Reply {
    if (!reply.ok) this.opts.report({ type: 'request_failed', code: reply.error.code, message: reply.error.message });
    return reply;
  }

  /** Returns false when the caller should wait for the client to read (backpressure). */
  private write(reply: Reply): boolean {
    if (this.closed || this.socket.destroyed || !this.socket.writable) {
      const what = reply.ok ? 'ok' : reply.error.code;
      this.opts.report({ type: 'reply_dropped', reason: `client gone before the ${what} reply was written` });
      return true;
    }
    return this.socket.write(encodeReply(reply));
  }

  /**
   * Waits until the client reads what we wrote. A client that stops reading for idleTimeoutMs is
   * cut off, or it would hold a connection slot (and a paused request queue) forever.
   */
  private writable(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.opts.report({ type: 'idle_timeout' });
        this.socket.destroy();
      }, this.opts.idleTimeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Sends a last reply, then closes; destroy after flushing so a silent peer cannot pin the fd. */
  private endWith(reply: Reply): void {
    this.stopInput();
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (this.ending) return;
    if (this.closed || this.socket.destroyed || !this.socket.writable) {
      this.write(reply);
      this.socket.destroy();
      return;
    }
    this.ending = true;
    // Drop what the client still sends until it ends its side: destroying now would fail its
    // pending writes with EPIPE and lose this reply unread. A peer that never ends is cut off after
    // a short linger, so it cannot pin the fd.
    const linger = setTimeout(() => this.socket.destroy(), REJECT_LINGER_MS);
    this.socket.once('close', () => clearTimeout(linger));
    this.socket.resume();
    this.socket.end(encodeReply(reply));
  }

  private finishIfDone(): void {
    if (!this.inputDone || this.pumping || this.queue.length > 0 || this.closed || this.ending) return;
    // All read requests are answered; close our side once the replies are flushed.
    this.ending = true;
    if (this.socket.writable) this.socket.end(() => this.socket.destroy());
    else this.socket.destroy();
  }

  private armIdle(): void {
    this.clearIdle();
    if (this.closed || this.inputDone) return;
    this.idleTimer = setTimeout(() => {
      this.opts.report({ type: 'idle_timeout' });
      this.endWith(errorReply(null, 'timeout', `no request for ${this.opts.idleTimeoutMs} ms; closing connection`));
    }, this.opts.idleTimeoutMs);
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
