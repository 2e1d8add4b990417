// Talking to a daemon's control socket byte by byte, without the CLI's client, to test the wire.

import * as net from 'node:net';
import { waitFor } from './wait.js';

export interface Exchange {
  /** Everything the daemon sent, as reply lines (the text after the last newline is dropped). */
  lines: string[];
  /** Bytes received after the last newline: should be none. */
  trailing: string;
  /** The client-side socket error, if any (e.g. ECONNRESET). */
  error: string | null;
}

/**
 * Connects, writes each chunk in turn (each once the previous was handed to the kernel), then
 * ends our side (unless `end` is false) and collects replies until the daemon closes.
 */
export function exchange(path: string, chunks: (string | Buffer)[], opts: { end?: boolean; timeoutMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let received = '';
    let error: string | null = null;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close from ${path} within ${opts.timeoutMs ?? 15_000} ms; received ${JSON.stringify(received.slice(0, 500))}`));
    }, opts.timeoutMs ?? 15_000);
    socket.on('data', (c: Buffer) => (received += c.toString('utf8')));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      const parts = received.split('\n');
      const trailing = parts.pop() ?? '';
      resolve({ lines: parts, trailing, error });
    });
    socket.once('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        await new Promise<void>((done) => socket.write(chunk, () => done()));
      }
      if (opts.end !== false) socket.end();
    });
  });
}

/** A connection kept open: send lines, read reply lines as they come. */
export class LineClient {
  private buffer = '';
  private readonly replies: string[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buffer += c.toString('utf8');
      const parts = this.buffer.split('\n');
      this.buffer = parts.pop() ?? '';
      this.replies.push(...parts);
    });
    socket.on('error', () => {}); // seen as `closed`
    socket.on('close', () => (this.closed = true));
  }

  static connect(path: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('connect', () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  send(value: unknown): void {
    this.socket.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
  }

  /** The next reply line, parsed. */
  async next(timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const line = await waitFor(() => `a reply line (closed: ${this.closed})`, () => this.replies.shift() ?? (this.closed ? Promise.reject(new Error('connection closed without a reply')) : null), timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  close(): void {
    this.socket.destroy();
  }
}
