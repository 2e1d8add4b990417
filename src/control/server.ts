// The daemon's end of the control socket: accepts connections, bounds how many there are, and
// owns the socket file for its lifetime. Protocol handling per connection is in connection.ts.
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection, REJECT_LINGER_MS, type ClientPeer, type CommandHandler, type ConnectionEvent } from './connection.js';
import { encodeReply, errorReply } from './protocol.js';
import { TurnBudget } from './turn-budget.js';
import type { EventSource } from './events-protocol.js';
import { DEFAULT_MAX_BUFFERED_BYTES, type DroppedSubscriber, type SubscriptionPolicy } from './subscription.js';
import {
  bindSocket,
  clearStaleSocket,
  ensureSocketDir,
  removeOwnSocket,
  type SocketIdentity,
} from './socket-file.js';

export { SocketSetupError, type SocketSetupCode } from './socket-file.js';
export type { ClientPeer, CommandHandler } from './connection.js';

export type ControlServerEvent =
  | ConnectionEvent
  | { type: 'listening'; socketPath: string }
  | { type: 'stale_socket_removed'; socketPath: string }
  /** Refused at accept: at the connection limit (`busy`), or because the server is closing. */
  | { type: 'connection_rejected'; reason: 'busy' | 'shutting_down'; connections: number }
  | { type: 'connection_evicted'; idleMs: number; connections: number }
  | ({ type: 'subscriber_dropped' } & DroppedSubscriber)
  | { type: 'closed'; socketPath: string; unlinked: boolean };

export interface ControlServerOptions {
  socketPath: string;
  handler: CommandHandler;
  /**
   * Connections served at once. At the limit a new connection closes the longest-idle one (no
   * request read and unanswered) with a `busy` reply; only when none is idle is the new one refused
   * with `busy`. Default 64.
   */
  maxConnections?: number;
  /** A connection with no request in progress is closed after this long without input. Default 60000. */
  idleTimeoutMs?: number;
  /** A request line must be complete (newline) this long after its first byte. Default 10000. */
  requestTimeoutMs?: number;
  /** A handler still running after this long gets a `timeout` reply; it is not cancelled. Default 60000. */
  handlerTimeoutMs?: number;
  /** Longest request line accepted, newline excluded. Default 65536. */
  maxLineBytes?: number;
  /** How long close() lets running requests finish before cutting connections. Default 5000. */
  closeGraceMs?: number;
  /** The events `subscribe` streams; without it, subscribe is refused. */
  events?: EventSource;
  /**
   * Subscribers at once, fewer than maxConnections so that they can never take every slot: the
   * rest stay for requests (an idle one is closed to admit a new one; a subscriber never is).
   * Default half of maxConnections.
   */
  maxSubscribers?: number;
  /** Unread bytes held per subscriber before it is dropped. Default 256 KiB. */
  maxSubscriberBufferedBytes?: number;
  /** Must not throw; a throw is written to stderr rather than lost. */
  onEvent?: (event: ControlServerEvent) => void;
  /**
   * getsockopt(SO_PEERCRED) on an accepted socket's fd (the native helper's peerCred); without
   * it, or when it fails, handlers get a null peer.
   */
  peerCred?: (fd: number) => ClientPeer;
}

/** Counters of everything that went wrong, for `status`-style diagnostics and tests. */
export interface ControlServerStats {
  accepted: number;
  rejectedBusy: number;
  /** Connections refused at accept because the server was closing. */
  rejectedShuttingDown: number;
  /** Idle connections closed to admit a new one at the connection limit. */
  evictedIdle: number;
  failedRequests: number;
  handlerErrors: number;
  idleTimeouts: number;
  requestTimeouts: number;
  handlerTimeouts: number;
  droppedReplies: number;
  connectionErrors: number;
  /** Subscribers dropped for not reading their events. */
  droppedSubscribers: number;
}

export class ControlServer {
  private readonly connections = new Set<Connection>();
  private readonly subscriptions: SubscriptionPolicy | undefined;
  private closing: Promise<void> | undefined;
  /** One for the whole server: the point is to bound the work of all connections per turn. */
  private readonly budget = new TurnBudget();
  private readonly counters: ControlServerStats = {
    accepted: 0,
    rejectedBusy: 0,
    rejectedShuttingDown: 0,
    evictedIdle: 0,
    failedRequests: 0,
    handlerErrors: 0,
    idleTimeouts: 0,
    requestTimeouts: 0,
    handlerTimeouts: 0,
    droppedReplies: 0,
    connectionErrors: 0,
    droppedSubscribers: 0,
  };

  private constructor(
    private readonly server: net.Server,
    private readonly opts: Required<Omit<ControlServerOptions, 'onEvent' | 'events' | 'peerCred'>> & Pick<ControlServerOptions, 'onEvent' | 'events' | 'peerCred'>,
    private identity: SocketIdentity | undefined,
  ) {
    this.subscriptions = this.subscriptionPolicy(opts.events);
  }

  static async listen(options: ControlServerOptions): Promise<ControlServer> {
    const opts = {
      maxConnections: 64,
      idleTimeoutMs: 60_000,
      requestTimeoutMs: 10_000,
      handlerTimeoutMs: 60_000,
      maxLineBytes: 65_536,
      closeGraceMs: 5_000,
      maxSubscriberBufferedBytes: DEFAULT_MAX_BUFFERED_BYTES,
      ...options,
      maxSubscribers: options.maxSubscribers ?? Math.max(1, Math.floor((options.maxConnections ?? 64) / 2)),
      socketPath: path.resolve(options.socketPath),
    };
    for (const key of ['maxConnections', 'idleTimeoutMs', 'requestTimeoutMs', 'handlerTimeoutMs', 'maxLineBytes', 'maxSubscribers', 'maxSubscriberBufferedBytes'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`${key} must be a positive integer, got ${opts[key]}`);
    }
    if (opts.events !== undefined && opts.maxSubscribers >= opts.maxConnections) {
      throw new RangeError(`maxSubscribers (${opts.maxSubscribers}) must be below maxConnections (${opts.maxConnections})`);
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

  /** Open subscriptions. */
  get subscriberCount(): number {
    let count = 0;
    for (const c of this.connections) if (c.isSubscriber && c.isOpen) count += 1;
    return count;
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

  /** Connections counted against the limit: those ending (evicted, timed out) only linger. */
  private openConnections(): number {
    let open = 0;
    for (const c of this.connections) if (c.isOpen) open += 1;
    return open;
  }

  /**
   * At the limit, closes the connection idle longest so the new one gets in (issue #15: 64 idle
   * clients used to lock the operator's `status` and `stop` out). False when every connection has
   * a request in progress: then the new one is refused.
   */
  private evictIdle(open: number): boolean {
    let victim: Connection | undefined;
    for (const c of this.connections) {
      if (c.isIdle && (victim === undefined || c.idleSinceMs < victim.idleSinceMs)) victim = c;
    }
    if (victim === undefined) return false;
    const idleMs = Date.now() - victim.idleSinceMs;
    this.counters.evictedIdle += 1;
    this.emit({ type: 'connection_evicted', idleMs, connections: open });
    victim.evict(`closed after ${idleMs} ms without a request to admit a new connection (limit ${this.opts.maxConnections})`);
    return true;
  }

  private accept(socket: net.Socket): void {
    const open = this.closing ? 0 : this.openConnections();
    if (this.closing || (open >= this.opts.maxConnections && !this.evictIdle(open))) {
      const reason = this.closing ? 'shutting_down' : 'busy';
      if (reason === 'busy') this.counters.rejectedBusy += 1;
      else this.counters.rejectedShuttingDown += 1;
      this.emit({ type: 'connection_rejected', reason, connections: open });
      socket.on('error', (err: NodeJS.ErrnoException) =>
        this.emit({ type: 'connection_error', errno: err.code ?? 'unknown', message: err.message }),
      );
      const reply = reason === 'shutting_down'
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
      requestTimeoutMs: this.opts.requestTimeoutMs,
      handlerTimeoutMs: this.opts.handlerTimeoutMs,
      maxLineBytes: this.opts.maxLineBytes,
      budget: this.budget,
      ...(this.subscriptions === undefined ? {} : { subscriptions: this.subscriptions }),
      report: (event) => this.emit(event),
      onClose: () => this.connections.delete(connection),
      peer: peerOf(socket, this.opts.peerCred),
    });
    this.connections.add(connection);
  }

  /** What a connection needs to admit a subscriber; shared by all of them. */
  private subscriptionPolicy(events: EventSource | undefined): SubscriptionPolicy | undefined {
    if (events === undefined) return undefined;
    return {
      source: events,
      admit: () => this.subscriberCount < this.opts.maxSubscribers ? null
        : `too many event subscribers (limit ${this.opts.maxSubscribers} of ${this.opts.maxConnections} connections); try again`,
      maxBufferedBytes: this.opts.maxSubscriberBufferedBytes,
      onDropped: (info) => this.emit({ type: 'subscriber_dropped', ...info }),
    };
  }

  private emit(event: ControlServerEvent): void {
    switch (event.type) {
      case 'subscriber_dropped':
        this.counters.droppedSubscribers += 1;
        break;
      case 'request_failed':
        this.counters.failedRequests += 1;
        break;
      case 'handler_error':
        this.counters.handlerErrors += 1;
        break;
      case 'idle_timeout':
        this.counters.idleTimeouts += 1;
        break;
      case 'request_timeout':
        this.counters.requestTimeouts += 1;
        break;
      case 'handler_timeout':
        this.counters.handlerTimeouts += 1;
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

/**
 * The client of an accepted socket. Node exposes no peer credentials; its handle's fd is what the
 * kernel call needs (libuv's `fd` getter, -1 or absent when there is none).
 */
function peerOf(socket: net.Socket, peerCred: ((fd: number) => ClientPeer) | undefined): ClientPeer | null {
  if (peerCred === undefined) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    const { pid, uid } = peerCred(fd);
    return { pid, uid };
  } catch {
    return null; // the client already gone (ENOTCONN): the request, if any, still gets served
  }
}
