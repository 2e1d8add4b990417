// The client commands that talk to a running daemon over its socket.

import { existsSync, readFileSync } from 'node:fs';
import { sendRequest } from '../control/client.js';
import { ControlError, type Command } from '../control/protocol.js';
import { assertClientDirs, loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT, UsageError } from './exit-codes.js';
import { findDaemon, loadToFindDaemon, type ConfigForFinding, type FoundDaemon } from './find-daemon.js';
import { formatStatus } from './format-status.js';
import { escapeForTerminal } from '../log/terminal-text.js';
import { parseDuration } from './duration.js';

/** Actions wait for the daemon to finish them, which can take a worker's whole stop grace. */
const ACTION_MARGIN_MS = 30_000;

export async function controlCommand(p: ParsedCommand): Promise<number> {
  // reload sends the file to the daemon to apply: a broken one is reported here (exit 78), as the
  // daemon would reject it. The other commands only need to reach the daemon.
  const target: ConfigForFinding = p.command === 'reload' ? await loadForReload(p) : await loadToFindDaemon(p);
  const { config } = target.loaded;
  const actionTimeoutMs = config.worker.stop_timeout_ms + ACTION_MARGIN_MS;
  // Command-line mistakes are usage errors, found before the daemon is asked anything.
  const stopTimeoutMs = typeof p.values.timeout === 'string'
    ? parseDuration(p.values.timeout, '--timeout')
    : config.worker.stop_timeout_ms + 15_000;
  try {
    const found = await findDaemon(target);
    if (found === null) {
      if (p.command === 'stop') {
        process.stdout.write('autopilotd is not running; nothing to stop\n');
        return EXIT.ok;
      }
      process.stderr.write(`autopilotd is not running (no daemon at ${config.socket_path})\n`);
      return EXIT.notRunning;
    }
    switch (p.command) {
      case 'status': {
        // The worker's argv and spawn error are anybody's text: escaped on a terminal, as logs are.
        const human = formatStatus(found.status, Date.now());
        process.stdout.write(p.values.json ? `${JSON.stringify(found.status, null, 2)}\n` : process.stdout.isTTY === true ? escapeForTerminal(human) : human);
        return EXIT.ok;
      }
      case 'stop': return await stop(found, stopTimeoutMs);
      case 'restart-worker':
      case 'stop-worker':
      case 'start-worker':
      case 'reload': {
        const data = (await sendRequest(found.socketPath, p.command as Command, undefined, { timeoutMs: actionTimeoutMs })) as Record<string, unknown>;
        process.stdout.write(describeAction(p.command, data));
        return EXIT.ok;
      }
    }
  } catch (err) {
    if (!(err instanceof ControlError)) throw err;
    if (err.code === 'not_running') {
      // It was there a moment ago: it exited meanwhile.
      if (p.command === 'stop') {
        process.stdout.write('autopilotd is not running; nothing to stop\n');
        return EXIT.ok;
      }
      process.stderr.write(`autopilotd is not running (${err.message})\n`);
      return EXIT.notRunning;
    }
    throw new CliFailure(`${p.command} failed: ${err.message} (${err.code})`, EXIT.failure);
  }
  throw new UsageError(`unknown command '${p.command}'`);
}

async function loadForReload(p: ParsedCommand): Promise<ConfigForFinding> {
  const loaded = await loadForCommand(p);
  await assertClientDirs(p, loaded);
  return { loaded, problems: null, locationKnown: true };
}

function describeAction(command: string, data: Record<string, unknown>): string {
  if (command === 'reload') return `configuration reloaded${data.config_path ? ` from ${String(data.config_path)}` : ''}\n`;
  const pid = data.pid === null ? '' : `, pid ${String(data.pid)}`;
  return `worker ${String(data.state)}${pid} (generation ${String(data.generation)})\n`;
}

async function stop(found: FoundDaemon, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const pid = found.status.daemon.pid;
  await sendRequest(found.socketPath, 'shutdown', undefined, { timeoutMs });
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
