// The client commands that talk to a running daemon over its socket.

import { existsSync, readFileSync } from 'node:fs';
import { sendRequest } from '../control/client.js';
import { ControlError, type Command } from '../control/protocol.js';
import { assertClientDirs, configFlagsOf, loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT } from './exit-codes.js';
import { findDaemon, loadToFindDaemon, onceEach, type ConfigForFinding, type FoundDaemon } from './find-daemon.js';
import { parseDuration } from './duration.js';
import { watchIntervalMs } from './option-values.js';
import { eventsCommand } from './events.js';
import type { Look } from './status-watch.js';
import type { Progress } from './stop-progress.js';
import { formatDuration } from './format-status.js';
import { noteLocation } from './location-cache.js';
import { printMetrics, printStatus } from './quick-commands.js';
import { writeOut } from './output-writer.js';

/** Actions wait for the daemon to finish them, which can take a worker's whole stop grace. */
const ACTION_MARGIN_MS = 30_000;

/** Commands that may take the noted location (quick-commands.ts) instead of loading the configuration. */
const QUICK = new Set(['status', 'metrics']);

export async function controlCommand(p: ParsedCommand): Promise<number> {
  // reload sends the file to the daemon to apply: a broken one is reported here (exit 78), as the
  // daemon would reject it. The other commands only need to reach the daemon.
  const target: ConfigForFinding = p.command === 'reload' ? await loadForReload(p) : await loadToFindDaemon(p);
  const { config } = target.loaded;
  if (QUICK.has(p.command) && target.problems === null && target.locationKnown) {
    noteLocation(configFlagsOf(p), { socket_path: config.socket_path });
  }
  const actionTimeoutMs = config.worker.stop_timeout_ms + ACTION_MARGIN_MS;
  // Its value was judged as the command line was read (option-values.ts).
  const stopTimeoutMs = typeof p.values.timeout === 'string'
    ? parseDuration(p.values.timeout, '--timeout', p.command)
    : config.worker.stop_timeout_ms + 15_000;
  if (p.command === 'status' && p.values.watch === true) return watch(p, target);
  try {
    const found = await findDaemon(target);
    if (found === null) return notRunning(p, target.loaded, `no daemon at ${config.socket_path}`);
    switch (p.command) {
      case 'status': return printStatus(p, found);
      case 'stop': return await stop(found, stopTimeoutMs);
      case 'events': return await eventsCommand(p, found);
      case 'metrics': return await metrics(found);
      // restart-worker, stop-worker, start-worker, reload: main.ts sends no other command here.
      default: {
        // On a terminal a restart tells its steps; off one, the one line only (scripts parse it).
        const data = p.command === 'restart-worker' && process.stdout.isTTY === true
          ? await restartWithProgress(found, actionTimeoutMs)
          : (await sendRequest(found.socketPath, p.command as Command, undefined, { timeoutMs: actionTimeoutMs })) as Record<string, unknown>;
        writeOut(describeAction(p.command, data));
        return EXIT.ok;
      }
    }
  } catch (err) {
    if (!(err instanceof ControlError)) throw err;
    // It was there a moment ago: it exited meanwhile.
    if (err.code === 'not_running') return notRunning(p, target.loaded, err.message);
    throw new CliFailure(`${p.command} failed: ${err.message} (${err.code})`, EXIT.failure);
  }
}

async function metrics(found: FoundDaemon): Promise<number> {
  return printMetrics(await sendRequest(found.socketPath, 'metrics'));
}

/** What notRunning reports: the file read, and where the daemon was looked for. */
interface Searched {
  path: string | null;
  config: { socket_path: string; pid_file: string };
}

/**
 * No daemon: `stop` has nothing to do (exit 0); the others exit 3. `status --json` still prints
 * an object, so that a script reads one shape whatever happened.
 */
function notRunning(p: ParsedCommand, loaded: Searched, reason: string): number {
  if (p.command === 'stop') {
    writeOut('autopilotd is not running; nothing to stop\n');
    return EXIT.ok;
  }
  if (p.command === 'status' && p.values.json === true) {
    const { socket_path, pid_file } = loaded.config;
    const report = { running: false, reason, config_path: loaded.path, socket_path, pid_file };
    writeOut(`${JSON.stringify(report, null, 2)}\n`);
  }
  process.stderr.write(`autopilotd is not running (${reason})\n`);
  return EXIT.notRunning;
}

async function watch(p: ParsedCommand, target: ConfigForFinding): Promise<number> {
  const intervalMs = watchIntervalMs(p.values);
  const { watchStatus } = await import('./status-watch.js');
  // A warning or a moved socket is told once, not at every look.
  const notice = onceEach();
  const look = async (): Promise<Look> => {
    try {
      // An answer slower than a few intervals is as good as none for a live view.
      const found = await findDaemon(target, Math.max(2000, 3 * intervalMs), notice);
      return found === null ? { absent: `no daemon at ${target.loaded.config.socket_path}` } : { status: found.status };
    } catch (err) {
      if (err instanceof ControlError) return { absent: `${err.message} (${err.code})` };
      // A file too broken to tell which daemon: none found yet; the watch keeps looking.
      if (err instanceof CliFailure) return { absent: err.message };
      throw err;
    }
  };
  return watchStatus({ intervalMs, json: p.values.json === true, look });
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
  // Progress only on a terminal: scripts parse the one line below.
  const progress = process.stdout.isTTY === true ? await stopProgress(found, started) : null;
  try {
    await sendRequest(found.socketPath, 'shutdown', undefined, { timeoutMs });
    // The reply means the worker tree is gone; the daemon then closes its socket and exits.
    while (existsSync(`/proc/${pid}`) && !isZombie(pid)) {
      if (Date.now() - started > timeoutMs) throw new CliFailure(`daemon pid ${pid} still running after ${timeoutMs} ms; ${CARRIES_ON}`, EXIT.failure);
      await new Promise((r) => setTimeout(r, 25));
    }
    await progress?.end(1000);
  } catch (err) {
    if (err instanceof ControlError && err.code === 'timeout') throw new CliFailure(`stop failed: ${err.message} (${err.code}); ${CARRIES_ON}`, EXIT.failure);
    throw err;
  } finally {
    await progress?.end(0);
  }
  writeOut(`autopilotd stopped (pid ${pid})${progress === null ? '' : ` in ${formatDuration(Date.now() - started)}`}\n`);
  return EXIT.ok;
}

/** A stop given up on is no stop undone. */
const CARRIES_ON = "the daemon carries on stopping (autopilotd status shows it; a second 'autopilotd stop' kills the worker tree at once)";

/**
 * The plan, then each step as the daemon takes it; Ctrl-C says what a second one does, and the
 * second asks the daemon to kill the tree at once (a second shutdown request, as a second `stop`).
 */
async function stopProgress(found: FoundDaemon, started: number): Promise<Progress> {
  const { say, progress } = await showProgress(found, started, (plan) =>
    `stopping autopilotd (pid ${found.status.daemon.pid}): ${plan}\n  a second 'autopilotd stop', or Ctrl-C twice here, kills the worker tree at once\n`);
  let presses = 0;
  const onCtrlC = (): void => {
    presses += 1;
    if (presses === 1) return say('  Ctrl-C: the daemon carries on stopping; Ctrl-C again kills the worker tree at once\n');
    // A third: leave now, as a shell's Ctrl-C would (128 + SIGINT); the daemon goes on regardless.
    if (presses > 2) process.exit(130);
    say('  Ctrl-C again: asking the daemon to kill the worker tree now\n');
    // Its reply comes with the first one's, once the tree is gone: nothing to wait for here.
    sendRequest(found.socketPath, 'shutdown', undefined, { timeoutMs: 60_000 }).catch(() => undefined);
  };
  process.on('SIGINT', onCtrlC);
  return {
    end: async (waitMs) => {
      process.off('SIGINT', onCtrlC);
      await progress.end(waitMs);
    },
  };
}

/**
 * On a terminal (stop, restart-worker): the headline `head` makes of the tree stop's plan, then
 * each step of the stop as the daemon's event stream tells it.
 */
async function showProgress(found: FoundDaemon, started: number, head: (plan: string) => string): Promise<{ say: (text: string) => void; progress: Progress }> {
  const { followProgress, stopPlan } = await import('./stop-progress.js');
  const say = (text: string): void => void process.stdout.write(text);
  say(head(stopPlan(found.status)));
  return { say, progress: followProgress(found.socketPath, started, say) };
}

/** `restart-worker` on a terminal: the plan and the tree stop's steps before the usual line. */
async function restartWithProgress(found: FoundDaemon, timeoutMs: number): Promise<Record<string, unknown>> {
  const started = Date.now();
  const w = found.status.worker;
  const { progress } = await showProgress(found, started, (plan) => (w.pid === null ? 'starting the worker (none runs)\n' : `restarting the worker (pid ${w.pid}): ${plan}\n`));
  try {
    const data = (await sendRequest(found.socketPath, 'restart-worker', undefined, { timeoutMs })) as Record<string, unknown>;
    await progress.end(w.pid === null ? 0 : 1000);
    return data;
  } finally {
    await progress.end(0);
  }
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
