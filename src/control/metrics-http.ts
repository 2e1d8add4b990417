// GET /metrics over HTTP ([metrics].listen), with node:http, and nothing else: any other path is a
// 404, any other method a 405. The daemon's event loop is shared with supervision, so a client can
// take only little of it: few connections, a small header limit, and deadlines for the headers, the
// whole request and an idle keep-alive connection (slowloris and idle-connection floods end there).

import type * as http from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { METRICS_CONTENT_TYPE } from './metrics-text.js';

/** How long a refused client's reply may take to flush before its socket is cut anyway. */
const REPLY_LINGER_MS = 1_000;

export interface MetricsHttpOptions {
  host: string;
  port: number;
  /** The exposition text now; a throw is a 500 and told to onError. */
  render(): string;
  /** Connections at once; more are closed at accept. Default 16. */
  maxConnections?: number;
  /** Request headers must be complete this long after the connection opened. Default 5000. */
  headersTimeoutMs?: number;
  /** The whole request, body included. Default 10000. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long. Default 2000. */
  keepAliveTimeoutMs?: number;
  /** Request line and headers together. Default 8192. */
  maxHeaderBytes?: number;
  onError?(message: string): void;
}

export interface MetricsHttpStats {
  scrapes: number;
  /** Not found, wrong method, bad request or too large, timed out. */
  refused: number;
  /** Closed at accept for being over the connection limit. */
  dropped: number;
}

export class MetricsHttpServer {
  private readonly counters: MetricsHttpStats = { scrapes: 0, refused: 0, dropped: 0 };
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: http.Server, private readonly opts: MetricsHttpOptions) {}

  static async listen(opts: MetricsHttpOptions): Promise<MetricsHttpServer> {
    const headersTimeout = opts.headersTimeoutMs ?? 5_000;
    const requestTimeout = opts.requestTimeoutMs ?? 10_000;
    const server = loadHttp().createServer({
      maxHeaderSize: opts.maxHeaderBytes ?? 8192,
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 2_000,
      // How often the two deadlines above are checked (default 30 s: a slowloris would get that long).
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
      noDelay: true,
    });
    server.maxConnections = opts.maxConnections ?? 16;
    // Also a socket-level deadline: one that never sends a byte is cut even between checks.
    server.timeout = requestTimeout;
    const metrics = new MetricsHttpServer(server, opts);
    server.on('request', (req, res) => metrics.answer(req, res));
    server.on('connection', (socket: Socket) => {
      metrics.sockets.add(socket);
      socket.once('close', () => metrics.sockets.delete(socket));
    });
    server.on('drop', () => {
      metrics.counters.dropped += 1;
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      metrics.counters.refused += 1;
      // node's own answers: 431 for headers over the limit, 408 past a deadline, else 400.
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      // Destroyed once the reply is flushed: destroying at once could discard the 431/408 unsent.
      // A peer whose receive window stays full gets a short linger, not a pinned socket.
      const linger = setTimeout(() => socket.destroy(), REPLY_LINGER_MS);
      socket.once('close', () => clearTimeout(linger));
      socket.end(`HTTP/1.1 ${status} ${loadHttp().STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => opts.onError?.(`HTTP server: ${err.message}`));
    return metrics;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : this.opts.port;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  get stats(): MetricsHttpStats {
    return { ...this.counters };
  }

  /** Stops listening and cuts every connection, idle or not. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    return closed;
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') return this.refuse(res, 404, 'not found: only /metrics is served\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.refuse(res, 405, 'method not allowed: GET /metrics\n');
    }
    let body: string;
    try {
      body = this.opts.render();
    } catch (err) {
      this.opts.onError?.(`rendering the metrics: ${(err as Error)?.message ?? String(err)}`);
      return this.refuse(res, 500, 'internal error\n');
    }
    this.counters.scrapes += 1;
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** A short text answer, and the connection closed: a client that asks for the wrong thing gets no second go on it. */
  private refuse(res: http.ServerResponse, status: number, text: string): void {
    this.counters.refused += 1;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), Connection: 'close' });
    res.end(text);
  }
}

/**
 * node:http only once an endpoint is configured: loaded at start it costs the daemon ~0.5 MiB of
 * RSS that most never use (BENCHMARKS.md, "Daemon memory").
 */
function loadHttp(): typeof http {
  return createRequire(import.meta.url)('node:http') as typeof http;
}
