// Shared helpers for the control tests: temp dirs with short paths, a raw line client, polling.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { ControlServer, type ControlServerEvent, type ControlServerOptions } from '../../src/control/server.js';
import type { Command } from '../../src/control/protocol.js';
import { EVENT_BACKLOG, type EventSource, type StreamEvent } from '../../src/control/events-protocol.js';

/** Polls cond every 20 ms until it holds; fails naming what was awaited. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Fixture {
  dir: string;
  /** <dir>/run/d.sock: the run/ directory does not exist until a server creates it. */
  socketPath: string;
  events: ControlServerEvent[];
  start(opts?: Partial<ControlServerOptions>): Promise<ControlServer>;
  /** Connects a raw client that is destroyed at the end of the test. */
  connect(socketPath?: string): Promise<RawClient>;
}

/** A temp dir under /tmp (short: socket paths are limited to 107 bytes), cleaned up after t. */
export function fixture(t: TestContext): Fixture {
  const dir = fs.mkdtempSync('/tmp/apc-');
  const servers: ControlServer[] = [];
  const clients: RawClient[] = [];
  const events: ControlServerEvent[] = [];
  const f: Fixture = {
    dir,
    socketPath: path.join(dir, 'run', 'd.sock'),
    events,
    async start(opts = {}) {
      const server = await ControlServer.listen({
        socketPath: f.socketPath,
        handler: echoHandler,
        onEvent: (e) => events.push(e),
        ...opts,
      });
      servers.push(server);
      return server;
    },
    async connect(socketPath = f.socketPath) {
      const client = await RawClient.connect(socketPath);
      clients.push(client);
      return client;
    },
  };
  t.after(async () => {
    for (const c of clients) c.socket.destroy();
    await Promise.all(servers.map((s) => s.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return f;
}

/** Replies with what it was asked, so tests can see the command and args arrived intact. */
export async function echoHandler(cmd: Command, args: Record<string, unknown>): Promise<unknown> {
  return { cmd, args };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyReply = any;

/** A client speaking raw bytes, collecting reply lines, so tests can send anything. */
export class RawClient {
  readonly lines: string[] = [];
  closed = false;
  ended = false;
  readonly errors: string[] = [];
  private buffer = '';
  private consumed = 0;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      for (let nl = this.buffer.indexOf('\n'); nl !== -1; nl = this.buffer.indexOf('\n')) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => this.errors.push(err.code ?? err.message));
    socket.on('close', () => (this.closed = true));
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      const onError = (err: NodeJS.ErrnoException): void => {
        // The listen backlog is full for a moment (a test opening hundreds of clients): retry.
        if (err.code === 'EAGAIN') setTimeout(() => RawClient.connect(socketPath).then(resolve, reject), 10);
        else reject(err);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new RawClient(socket));
      });
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  request(id: unknown, cmd: string, args?: unknown): void {
    this.send(`${JSON.stringify(args === undefined ? { v: 1, id, cmd } : { v: 1, id, cmd, args })}\n`);
  }

  /** The next reply not yet returned, parsed. */
  async reply(what = 'a reply'): Promise<AnyReply> {
    await waitFor(() => this.lines.length > this.consumed || this.closed, what);
    const line = this.lines[this.consumed];
    if (line === undefined) throw new Error(`connection closed while waiting for ${what}`);
    this.consumed += 1;
    return JSON.parse(line);
  }

  async waitClosed(what = 'the server to close the connection', timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.closed, what, timeoutMs);
  }
}

/** Events made by the test, kept like the daemon's journal keeps them. */
export class TestEvents implements EventSource {
  private seq = 0;
  private readonly recent: StreamEvent[] = [];
  private readonly listeners = new Set<(e: StreamEvent) => void>();

  emit(text: string): void {
    this.seq += 1;
    const event: StreamEvent = { seq: this.seq, at: new Date(0).toISOString(), level: 'info', kind: 'test', text };
    this.recent.push(event);
    if (this.recent.length > EVENT_BACKLOG) this.recent.shift();
    for (const listener of this.listeners) listener(event);
  }

  attach(listener: (e: StreamEvent) => void): { backlog: readonly StreamEvent[]; detach(): void } {
    this.listeners.add(listener);
    return { backlog: [...this.recent], detach: () => this.listeners.delete(listener) };
  }

  backlog(): readonly StreamEvent[] {
    return [...this.recent];
  }

  get listening(): number {
    return this.listeners.size;
  }
}
