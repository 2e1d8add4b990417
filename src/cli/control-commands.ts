// The client commands that talk to a running daemon over its socket.

import { existsSync, readFileSync } from 'node:fs';
import { sendRequest } from '../control/client.js';
import type { Command, StatusData } from '../control/protocol.js';
import { loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT, UsageError } from './exit-codes.js';
import { formatStatus } from './format-status.js';
import { parseDuration } from './duration.js';

/** Actions wait for the daemon to finish them, which can take a worker's whole stop grace. */
const ACTION_MARGIN_MS = 30_000;

export async function controlCommand(p: ParsedCommand): Promise<number> {
  // reload sends the file to the daemon to apply: a broken one is reported here (exit 78), as the
  // daemon would reject it. The other commands only need to reach the daemon.
  const { config } = await loadForCommand(p, { findDaemonOnly: p.command !== 'reload' });
  const socket = config.socket_path;
  const actionTimeoutMs = config.worker.stop_timeout_ms + ACTION_MARGIN_MS;
  // Command-line mistakes are usage errors, found before the daemon is asked anything.
  const stopTimeoutMs = typeof p.values.timeout === 'string'
    ? parseDuration(p.values.timeout, '--timeout')
    : config.worker.stop_timeout_ms + 15_000;
  try {
    switch (p.command) {
      case 'status': {
        const status = (await sendRequest(socket, 'status')) as StatusData;
        process.stdout.write(p.values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, Date.now()));
        return EXIT.ok;
      }
      case 'stop': return await stop(socket, stopTimeoutMs);
      case 'restart-worker':
      case 'stop-worker':
      case 'start-worker':
      case 'reload': {
        const data = (await sendRequest(socket, p.command as Command, undefined, { timeoutMs: actionTimeoutMs })) as Record<string, unknown>;
        process.stdout.write(describeAction(p.command, data));
        return EXIT.ok;
      }
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'not_running') {
      if (p.command === 'stop') {
        process.stdout.write('autopilotd is not running; nothing to stop\n');
        return EXIT.ok;
      }
      process.stderr.write(`autopilotd is not running (no daemon at ${socket})\n`);
      return EXIT.notRunning;
    }
    throw new CliFailure(`${p.command} failed: ${(err as Error).message}${code ? ` (${code})` : ''}`, EXIT.failure);
  }
  throw new UsageError(`unknown command '${p.command}'`);
}

function describeAction(command: string, data: Record<string, unknown>): string {
  if (command === 'reload') return `configuration reloaded${data.config_path ? ` from ${String(data.config_path)}` : ''}\n`;
  const pid = data.pid === null ? '' : `, pid ${String(data.pid)}`;
  return `worker ${String(data.state)}${pid} (generation ${String(data.generation)})\n`;
}

async function stop(socket: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const status = (await sendRequest(socket, 'status', undefined, { timeoutMs })) as StatusData;
  const pid = status.daemon.pid;
  await sendRequest(socket, 'shutdown', undefined, { timeoutMs });
  // The reply means the worker tree is gone; the daemon then closes its socket and exits.
  while (existsSync(`/proc/${pid}`) && !isZombie(pid)) {
    if (Date.now() - started > timeoutMs) throw new CliFailure(`daemon pid ${pid} still running after ${timeoutMs} ms`, EXIT.failure);
    await new Promise((r) => setTimeout(r, 25));
  }
  process.stdout.write(`autopilotd stopped (pid ${pid})\n`);
  return EXIT.ok;
}

/** A dead daemon whose parent has not reaped it yet counts as exited. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return true; // vanished between the two reads: gone
  }
}
