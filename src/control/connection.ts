// One client connection: splits bytes into bounded lines, runs requests one at a time and writes
// replies in request order. Memory per connection stays bounded: the socket is paused while
// unprocessed input piles up, and the next request waits while the client is not reading replies.
// Requests take turns with other connections' (turn-budget.ts); waiting for input has deadlines.
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
  type Request,
} from './protocol.js';
import type { TurnBudget } from './turn-budget.js';
import { parseSubscribeArgs, type SubscribeData } from './events-protocol.js';
import { Subscription, type SubscriptionPolicy } from './subscription.js';

/** Who sent a request, as the kernel knows the socket's peer (SO_PEERCRED); null when unknown. */
export interface ClientPeer {
  pid: number;
  uid: number;
}

export type CommandHandler = (cmd: Command, args: Record<string, unknown>, peer: ClientPeer | null) => Promise<unknown>;

/** What a connection reports; the server turns these into its events. */
export type ConnectionEvent =
  | { type: 'request_failed'; code: ErrorCode; message: string }
  | { type: 'handler_error'; cmd: Command; message: string }
  | { type: 'handler_timeout'; cmd: Command; timeoutMs: number }
  | { type: 'idle_timeout' }
  | { type: 'request_timeout'; bytes: number }
  | { type: 'partial_line_dropped'; bytes: number }
  | { type: 'reply_dropped'; reason: string }
  | { type: 'connection_error'; errno: string; message: string };

export interface ConnectionOptions {
  handler: CommandHandler;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  handlerTimeoutMs: number;
  maxLineBytes: number;
  budget: TurnBudget;
  /** Where `subscribe` takes its events from; without it, subscribe is refused. */
  subscriptions?: SubscriptionPolicy;
  report: (event: ConnectionEvent) => void;
  onClose: () => void;
  /** The client at the other end, read once at accept. */
  peer?: ClientPeer | null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const BLANK_LINES_PER_TURN = 1024;

/** Only ASCII blanks: other whitespace still goes through decoding and trim() in answer(). */
function isBlank(line: Buffer): boolean {
  for (const byte of line) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  return true;
}

/** How long a connection ended by the server (line too long, idle) may stay open for its client to read the reply. */
export const REJECT_LINGER_MS = 1_000;

export class Connection {
  /**
   * Bytes read and not yet answered, split into lines only when a request is taken (issue #15):
   * splitting a whole chunk at once made one object per line, so 64 KiB of short lines cost
   * megabytes. Reading pauses while more than maxLineBytes are held.
   */
  private readonly input: Buffer[] = [];
  private inputOffset = 0;
  private inputBytes = 0;
  /** Newlines in `input`: the complete lines waiting. */
  private completeLines = 0;
  /** Bytes after the last newline: an unfinished line. */
  private tailBytes = 0;
  /** An unfinished line grew past maxLineBytes: answer the lines before it, then refuse and close. */
  private tooLong = false;
  private pumping = false;
  private lastTurn = -1;
  /** No more requests will be read: peer ended, line too long, idle, or server closing. */
  private inputDone = false;
  private draining = false;
  /** The idle or request deadline, whichever applies while waiting for input. */
  private waitTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** We called end(); calling it again (or destroy) could cut off replies still being flushed. */
  private ending = false;
  /** When the connection was opened or last had a reply written; ranks connections for eviction. */
  private lastActiveAtMs = Date.now();
  /** Set once `subscribe` was admitted: the connection streams events and reads no more requests. */
  private subscription: Subscription | null = null;
  /** The client ended its side: a subscriber's stream ends with it. */
  private peerEnded = false;
  readonly whenClosed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.whenClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      // Half-close: `echo '{...}' | nc -U` ends its side and still waits for the reply.
      // Requests must end with a newline; an unfinished line here is a client that went away.
      if (this.tailBytes > 0 && !this.inputDone) {
        opts.report({ type: 'partial_line_dropped', bytes: this.tailBytes });
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
      this.clearWait();
      this.dropInput();
      opts.onClose();
    });
    this.armWait();
  }

  /** Nothing owed to the client and nothing running: it may be closed to admit another (see server). */
  get isIdle(): boolean {
    return !this.pumping && this.completeLines === 0 && !this.ending && !this.closed && this.subscription === null;
  }

  /** Admitted as a subscriber (counted against the server's subscriber limit while open). */
  get isSubscriber(): boolean {
    return this.subscription !== null;
  }

  /** Counted against the connection limit: not yet ending. */
  get isOpen(): boolean {
    return !this.ending && !this.closed;
  }

  get idleSinceMs(): number {
    return this.lastActiveAtMs;
  }

  /** Closed to make room: tells the client why, like a refused connection. */
  evict(message: string): void {
    this.endWith(errorReply(null, 'busy', message));
  }

  /** Server shutdown: answer what was read with `shutting_down`, finish the running request, end. */
  drain(): void {
    this.draining = true;
    if (this.subscription !== null) {
      this.subscription.finish('shutting_down', 'the daemon is shutting down');
      return;
    }
    this.stopInput();
    this.finishIfDone();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.inputDone) return;
    const max = this.opts.maxLineBytes;
    const tailBefore = this.tailBytes;
    let last = chunk.lastIndexOf(10);
    if (last === -1) {
      this.tailBytes += chunk.length;
    } else {
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, nl + 1)) this.completeLines += 1;
      this.tailBytes = chunk.length - last - 1;
    }
    // Refuse as soon as the unfinished line exceeds the limit; never buffer it whole.
    if (this.tailBytes > max) {
      if (last === -1) this.dropTail(tailBefore);
      else this.push(chunk.subarray(0, last + 1));
      this.tailBytes = 0;
      this.tooLong = true;
      this.stopInput();
      this.schedule();
      return;
    }
    this.push(chunk);
    if (this.inputBytes > max) this.socket.pause();
    if (this.completeLines > 0) this.schedule();
    // A new unfinished line starts its deadline; more bytes of it do not extend it (issue #15).
    else if (tailBefore === 0 && !this.pumping) this.armWait();
  }

  private push(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.input.push(bytes);
    this.inputBytes += bytes.length;
  }

  /** Forgets the last `bytes` held: an unfinished line being refused. */
  private dropTail(bytes: number): void {
    let left = bytes;
    while (left > 0) {
      const lastChunk = this.input[this.input.length - 1];
      if (lastChunk === undefined) break;
      const held = this.input.length === 1 ? lastChunk.length - this.inputOffset : lastChunk.length;
      if (held <= left) {
        this.input.pop();
        if (this.input.length === 0) this.inputOffset = 0;
        this.inputBytes -= held;
        left -= held;
      } else {
        this.input[this.input.length - 1] = lastChunk.subarray(0, lastChunk.length - left);
        this.inputBytes -= left;
        left = 0;
      }
    }
  }

  private dropInput(): void {
    this.input.length = 0;
    this.inputOffset = 0;
    this.inputBytes = 0;
    this.completeLines = 0;
    this.tailBytes = 0;
  }

  /** The next complete line, newline excluded. Only called while completeLines > 0. */
  private takeLine(): Buffer {
    const parts: Buffer[] = [];
    for (let chunk = this.input[0]; chunk !== undefined; chunk = this.input[0]) {
      const nl = chunk.indexOf(10, this.inputOffset);
      const end = nl === -1 ? chunk.length : nl;
      parts.push(chunk.subarray(this.inputOffset, end));
      if (nl === -1 || nl + 1 === chunk.length) {
        this.input.shift();
        this.inputOffset = 0;
      } else {
        this.inputOffset = nl + 1;
      }
      if (nl !== -1) break;
    }
    const line = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    this.inputBytes -= line.length + 1;
    this.completeLines -= 1;
    if (!this.inputDone && this.inputBytes <= this.opts.maxLineBytes) this.socket.resume();
    return line;
  }

  private stopInput(): void {
    this.inputDone = true;
    // Complete lines already read are still answered; an unfinished one never will be.
    this.dropTail(this.tailBytes);
    this.tailBytes = 0;
    this.clearWait();
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
    this.clearWait();
    try {
      while (!this.closed && !this.ending) {
        if (this.completeLines === 0) {
          if (this.tooLong) this.refuseTooLong();
          break;
        }
        this.lastTurn = await this.opts.budget.take(this.lastTurn);
        let reply: Reply | null;
        try {
          if (this.closed || this.ending || this.completeLines === 0) continue;
          let line = this.takeLine();
          // Blank lines are keep-alive noise: skip a bounded run of them in one grant, or a client
          // sending megabytes of newlines would take a turn of the event loop per byte.
          for (let skipped = 0; isBlank(line) && this.completeLines > 0 && skipped < BLANK_LINES_PER_TURN; skipped += 1) {
            line = this.takeLine();
          }
          if (line.length > this.opts.maxLineBytes) {
            this.refuseTooLong();
            break;
          }
          reply = await this.answer(line);
          this.lastActiveAtMs = Date.now();
        } finally {
          this.opts.budget.done();
        }
        if (reply === null) continue;
        if (this.subscription !== null && reply.ok) {
          this.write(reply);
          this.stream(this.subscription);
          break;
        }
        if (!this.write(reply)) await this.writable();
      }
    } finally {
      this.pumping = false;
    }
    this.finishIfDone();
    this.armWait();
  }

  private refuseTooLong(): void {
    this.opts.report({ type: 'request_failed', code: 'line_too_long', message: 'line too long' });
    const msg = `request line exceeds ${this.opts.maxLineBytes} bytes; closing connection`;
    this.endWith(errorReply(null, 'line_too_long', msg));
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
    if (request.cmd === 'subscribe') return this.admitSubscriber(request);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Call inside try: a non-async handler may throw synchronously.
      const result = this.opts.handler(request.cmd, request.args, this.opts.peer ?? null);
      // A handler that never settles would hold this connection, and its slot, forever (issue #15).
      const timeoutMs = this.opts.handlerTimeoutMs;
      const timedOut = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          this.opts.report({ type: 'handler_timeout', cmd: request.cmd, timeoutMs });
          reject(new ControlError('timeout', `${request.cmd} did not finish within ${timeoutMs} ms; it may still complete: check status`));
        }, timeoutMs);
      });
      return okReply(request.id, await Promise.race([result, timedOut]));
    } catch (err) {
      if (err instanceof ControlError) return errorReply(request.id, err.code, err.message);
      const message = err instanceof Error ? err.message : String(err);
      this.opts.report({ type: 'handler_error', cmd: request.cmd, message });
      return errorReply(request.id, 'internal', `internal error in ${request.cmd}: ${message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `subscribe`: the ok reply, with the subscription taken (its backlog fixed) but not yet writing. */
  private admitSubscriber(request: Request): Reply {
    const policy = this.opts.subscriptions;
    if (policy === undefined) return this.failed(errorReply(request.id, 'bad_request', 'this server has no event stream'));
    const args = parseSubscribeArgs(request.args);
    if ('problem' in args) return this.failed(errorReply(request.id, 'bad_request', args.problem));
    const refused = policy.admit();
    if (refused !== null) return this.failed(errorReply(request.id, 'busy', refused));
    this.subscription = new Subscription(this.socket, policy.source, {
      follow: args.follow,
      maxBufferedBytes: policy.maxBufferedBytes,
      lingerMs: REJECT_LINGER_MS,
      onEnding: () => {
        this.ending = true;
      },
      onDropped: (info) => policy.onDropped(info),
    });
    const data: SubscribeData = { backlog: this.subscription.backlogCount, follow: args.follow, max_buffered_bytes: policy.maxBufferedBytes };
    return okReply(request.id, data);
  }

  /**
   * From now on the connection only streams. Input is read and thrown away (requests pipelined
   * after `subscribe` are not answered), so that the client ending its side is seen and ends it.
   */
  private stream(subscription: Subscription): void {
    this.inputDone = true;
    this.dropInput();
    this.clearWait();
    this.socket.resume();
    subscription.begin();
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
    this.dropInput();
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
    if (!this.inputDone || this.pumping || this.completeLines > 0 || this.closed || this.ending) return;
    // A subscriber streams until it ends its side (or is dropped, or the server closes).
    if (this.subscription !== null && !this.peerEnded) return;
    // All read requests are answered; close our side once the replies are flushed.
    this.ending = true;
    if (this.socket.writable) this.socket.end(() => this.socket.destroy());
    else this.socket.destroy();
  }

  /**
   * While waiting for input: with nothing read, the idle deadline; with an unfinished line, the
   * request deadline, counted from its first byte (or from the end of the previous request, if the
   * line arrived while that ran) and not extended by later bytes (issue #15: a byte every 40 s
   * used to hold a connection forever).
   */
  private armWait(): void {
    this.clearWait();
    if (this.closed || this.inputDone || this.ending || this.pumping) return;
    if (this.tailBytes === 0) {
      this.waitTimer = setTimeout(() => {
        this.opts.report({ type: 'idle_timeout' });
        this.endWith(errorReply(null, 'timeout', `no request for ${this.opts.idleTimeoutMs} ms; closing connection`));
      }, this.opts.idleTimeoutMs);
      return;
    }
    this.waitTimer = setTimeout(() => {
      this.opts.report({ type: 'request_timeout', bytes: this.tailBytes });
      const msg = `request line not finished within ${this.opts.requestTimeoutMs} ms; closing connection`;
      this.endWith(errorReply(null, 'timeout', msg));
    }, this.opts.requestTimeoutMs);
  }

  private clearWait(): void {
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
  }
}
