// The daemon's end of the control socket: accepts connections, bounds how many there are, and
// owns the socket file for its lifetime. Protocol handling per connection is in connection.ts.
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection, REJECT_LINGER_MS, type CommandHandler, type ConnectionEvent } from './connection.js';
import { encodeReply, errorReply } from './protocol.js';
import {
  bindSocket,
  clearStaleSocket,
  ensureSocketDir,
  removeOwnSocket,
  type SocketIdentity,
} from './socket-file.js';

export { SocketSetupError, type SocketSetupCode } from './socket-file.js';
export type { CommandHandler } from './connection.js';

export type ControlServerEvent =
  | ConnectionEvent
  | { type: 'listening'; socketPath: string }
  | { type: 'stale_socket_removed'; socketPath: string }
  | { type: 'connection_rejected'; reason: 'busy'; connections: number }
  | { type: 'closed'; socketPath: string; unlinked: boolean };

export interface ControlServerOptions {
  socketPath: string;
  handler: CommandHandler;
  /** Connections served at once; more get a `busy` reply and are closed. Default 64. */
  maxConnections?: number;
  /** A connection with no request in progress is closed after this long without input. Default 60000. */
  idleTimeoutMs?: number;
  /** Longest request line accepted, newline excluded. Default 65536. */
  maxLineBytes?: number;
  /** How long close() lets running requests finish before cutting connections. Default 5000. */
  closeGraceMs?: number;
  /** Must not throw; a throw is written to stderr rather than lost. */
  onEvent?: (event: ControlServerEvent) => void;
}

/** Counters of everything that went wrong, for `status`-style diagnostics and tests. */
export interface ControlServerStats {
  accepted: number;
  rejectedBusy: number;
  failedRequests: number;
  handlerErrors: number;
  idleTimeouts: number;
  droppedReplies: number;
  connectionErrors: number;
}

export class ControlServer {
  private readonly connections = new Set<Connection>();
  private closing: Promise<void> | undefined;
  private readonly counters: ControlServerStats = {
    accepted: 0,
    rejectedBusy: 0,
    failedRequests: 0,
    handlerErrors: 0,
    idleTimeouts: 0,
    droppedReplies: 0,
    connectionErrors: 0,
  };

  private constructor(
    private readonly server: net.Server,
    private readonly opts: Required<Omit<ControlServerOptions, 'onEvent'>> & Pick<ControlServerOptions, 'onEvent'>,
    private identity: SocketIdentity | undefined,
  ) {}

  static async listen(options: ControlServerOptions): Promise<ControlServer> {
    const opts = {
      maxConnections: 64,
      idleTimeoutMs: 60_000,
      maxLineBytes: 65_536,
      closeGraceMs: 5_000,
      ...options,
      socketPath: path.resolve(options.socketPath),
    };
    for (const key of ['maxConnections', 'idleTimeoutMs', 'maxLineBytes'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`${key} must be a positive integer, got ${opts[key]}`);
    }
    ensureSocketDir(path.dirname(opts.socketPath));
    const staleRemoved = await clearStaleSocket(opts.socketPath);
    // allowHalfOpen: a client that ends its side after the request still gets its reply.
    const server = net.createServer({ allowHalfOpen: true });
    const control = new ControlServer(server, opts, undefined);
    if (staleRemoved) control.emit({ type: 'stale_socket_removed', socketPath: opts.socketPath });
    server.on('connection', (socket) => control.accept(socket));
    control.identity = await bindSocket(server, opts.socketPath);
    // Once listening, accept() errors (EMFILE) surface here; they must not crash the daemon.
    server.on('error', (err: NodeJS.ErrnoException) =>
      control.emit({ type: 'connection_error', errno: err.code ?? 'unknown', message: err.message }),
    );
    control.emit({ type: 'listening', socketPath: opts.socketPath });
    return control;
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get stats(): ControlServerStats {
    return { ...this.counters };
  }

  /**
   * Stops listening, answers requests already read with `shutting_down`, lets running requests
   * finish for up to closeGraceMs, then cuts what is left. Do not await this inside a handler:
   * it waits for that handler's reply.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // Unlink first: once closed, libuv unlinks the bound name, and the path may be reused.
    const unlinked = this.identity ? removeOwnSocket(this.opts.socketPath, this.identity) : false;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const all = [...this.connections];
    for (const c of all) c.drain();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.closeGraceMs);
    });
    await Promise.race([Promise.all(all.map((c) => c.whenClosed)), grace]);
    clearTimeout(timer);
    for (const c of this.connections) c.destroy();
    await Promise.all(all.map((c) => c.whenClosed));
    await stopped;
    this.emit({ type: 'closed', socketPath: this.opts.socketPath, unlinked });
  }

  private accept(socket: net.Socket): void {
    if (this.closing || this.connections.size >= this.opts.maxConnections) {
      this.counters.rejectedBusy += 1;
      this.emit({ type: 'connection_rejected', reason: 'busy', connections: this.connections.size });
      socket.on('error', (err: NodeJS.ErrnoException) =>
        this.emit({ type: 'connection_error', errno: err.code ?? 'unknown', message: err.message }),
      );
      const reply = this.closing
        ? errorReply(null, 'shutting_down', 'the daemon is shutting down')
        : errorReply(null, 'busy', `too many control connections (limit ${this.opts.maxConnections}); try again`);
      // Half-close and drop what the client sends: destroying at once would make the request it
      // writes on connect fail with EPIPE, and the client would lose this reply unread. Both sides
      // ended closes the socket; a peer that never ends its side is cut off after a short linger.
      const linger = setTimeout(() => socket.destroy(), REJECT_LINGER_MS);
      socket.on('close', () => clearTimeout(linger));
      socket.resume();
      socket.end(encodeReply(reply));
      return;
    }
    this.counters.accepted += 1;
    const connection: Connection = new Connection(socket, {
      handler: this.opts.handler,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      maxLineBytes: this.opts.maxLineBytes,
      report: (event) => this.emit(event),
      onClose: () => this.connections.delete(connection),
    });
    this.connections.add(connection);
  }

  private emit(event: ControlServerEvent): void {
    switch (event.type) {
      case 'request_failed':
        this.counters.failedRequests += 1;
        break;
      case 'handler_error':
        this.counters.handlerErrors += 1;
        break;
      case 'idle_timeout':
        this.counters.idleTimeouts += 1;
        break;
      case 'reply_dropped':
        this.counters.droppedReplies += 1;
        break;
      case 'connection_error':
        this.counters.connectionErrors += 1;
        break;
      default:
        break;
    }
    if (!this.opts.onEvent) return;
    try {
      this.opts.onEvent(event);
    } catch (err) {
      process.stderr.write(`autopilotd: control onEvent listener threw: ${(err as Error)?.stack ?? String(err)}\n`);
    }
  }
}
