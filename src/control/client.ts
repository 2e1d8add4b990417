// The CLI's end of the control socket: one request, one reply. Imports only the pure protocol so
// the `status` bundle stays small (never import server code here).
import * as net from 'node:net';
import {
  ControlError,
  encodeRequest,
  isProtocolFailure,
  parseReply,
  type Command,
  type ErrorCode,
} from './protocol.js';

export interface SendRequestOptions {
  /** Covers connect, the daemon's work and the reply. Default 15000. */
  timeoutMs?: number;
}

/** Replies beyond this are a broken daemon, not data; stop reading instead of growing forever. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

let nextId = 1;

export function sendRequest(
  socketPath: string,
  cmd: Command,
  args?: Record<string, unknown>,
  opts: SendRequestOptions = {},
): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err: ControlError | null, data?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(data);
    };
    const timer = setTimeout(
      () => finish(new ControlError('timeout', `no reply to ${cmd} from ${socketPath} within ${timeoutMs} ms`)),
      timeoutMs,
    );

    socket.once('connect', () => socket.write(encodeRequest(id, cmd, args)));
    socket.on('data', (chunk: Buffer) => {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        chunks.push(chunk);
        received += chunk.length;
        if (received > MAX_REPLY_BYTES) {
          finish(new ControlError('internal', `reply from ${socketPath} exceeds ${MAX_REPLY_BYTES} bytes`));
        }
        return;
      }
      chunks.push(chunk.subarray(0, nl));
      finish(...interpret(Buffer.concat(chunks).toString('utf8'), id, socketPath));
    });
    socket.on('end', () =>
      finish(new ControlError('disconnected', `${socketPath} closed the connection before replying to ${cmd}`)),
    );
    socket.on('error', (err: NodeJS.ErrnoException) => finish(connectError(err, socketPath)));
  });
}

function interpret(line: string, id: number, socketPath: string): [ControlError | null, unknown?] {
  const reply = parseReply(line);
  if (isProtocolFailure(reply)) return [new ControlError('internal', `${socketPath}: ${reply.message}`)];
  // A reply with id null is the daemon refusing the connection itself (busy, shutting down).
  if (reply.id !== id && reply.id !== null) {
    return [new ControlError('internal', `${socketPath}: reply id ${JSON.stringify(reply.id)} does not match request id ${id}`)];
  }
  if (reply.ok) return [null, reply.data];
  return [new ControlError(reply.error.code, reply.error.message)];
}

/** A connect or socket error as the ControlError a command reports (`not_running` for no daemon). */
export function connectError(err: NodeJS.ErrnoException, socketPath: string): ControlError {
  const detail = `connect ${socketPath}: ${err.code ?? err.message}`;
  let code: ErrorCode = 'internal';
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') code = 'not_running';
  else if (err.code === 'EACCES' || err.code === 'EPERM') code = 'permission_denied';
  else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') code = 'disconnected';
  const hint = code === 'not_running' ? ' (daemon not running)' : '';
  return new ControlError(code, `${detail}${hint}`, { cause: err });
}
