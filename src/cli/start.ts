// `autopilotd start`: in the foreground it runs the daemon in this process; otherwise it spawns a
// detached daemon and waits on a pipe (fd 3) for its word that it listens and the worker spawned.

import { spawn } from 'node:child_process';
import { closeSync, constants, ftruncateSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatProblem } from '../config/errors.js';
import type { LoadedConfig } from '../config/types.js';
import { sendRequest } from '../control/client.js';
import type { StatusData } from '../control/protocol.js';
import { closeInheritedFds } from '../os/inherited-fds.js';
import { markLogEnd, readLinesSince, type LogMark } from '../os/log-tail.js';
import { openPrivateFile, UnsafeFileError } from '../os/private-file.js';
import type { DaemonOptions, StartupOutcome } from '../daemon/daemon.js';
import { daemonLogPath, daemonStderrPath } from '../daemon/log-path.js';
import { configFlagsOf, loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT } from './exit-codes.js';
import { daemonFromPidFile, movedNotice } from './find-daemon.js';
import { logFileConfigError, runtimeDirProblems } from './runtime-dirs.js';
import { startTimeoutMs, stopUnreportedDaemon } from './start-timeout.js';
import { workerProblems } from './worker-check.js';
import { DAEMON_NODE_FLAGS } from './daemon-node-flags.js';
import { writeOut } from './output-writer.js';

/** The fd on which a daemonized child reports its startup outcome to `autopilotd start`. */
const READY_FD = 3;

export async function startCommand(p: ParsedCommand): Promise<number> {
  const loaded = await loadForCommand(p);
  const foreground = p.values.foreground === true && p.values.daemonized !== true;
  // Before anything starts: a directory another user could change is a configuration error (exit
  // 78). A foreground daemon writes no log file, so logs.dir is only looked at, not created.
  const problems = runtimeDirProblems(loaded, { socket_path: 'create', pid_file: 'create', 'logs.dir': foreground ? 'check' : 'create' });
  // The worker's spawn: checked once, by the command the user ran (a daemonized child's stderr is a
  // file nobody reads unless the start fails).
  const worker = p.values.daemonized === true ? null : workerProblems(loaded, process.env);
  if (worker !== null) problems.push(...worker.errors);
  if (problems.length > 0) throw new ConfigError(problems);
  for (const warning of worker?.warnings ?? []) process.stderr.write(`autopilotd: warning: ${formatProblem(warning)}\n`);
  // A daemonized child runs in the foreground whatever else its argv says: it must never fork again.
  if (p.values.foreground || p.values.daemonized) return runForeground(p, loaded);
  return daemonize(p, loaded);
}

async function runForeground(p: ParsedCommand, loaded: LoadedConfig): Promise<number> {
  const daemonized = p.values.daemonized === true;
  // Before the worker is spawned, so that it gets fds 0-2 and nothing else (#14). READY_FD needs
  // no care: Node marks an inherited fd that low O_CLOEXEC (see os/inherited-fds.ts).
  closeInheritedFds(daemonized ? new Set([READY_FD]) : new Set());
  const { runDaemon } = await import('../daemon/daemon.js');
  const options: DaemonOptions = {
    loaded,
    // With the caller's cwd, captured before the chdir below: a reload resolves a relative
    // --config, --workdir or AUTOPILOTD_CONFIG as the start did.
    reloadInput: reloadInputOf(p),
    mode: daemonized ? 'background' : 'foreground',
  };
  if (daemonized) {
    options.onStartup = reportToParent;
    // A detached daemon that kept the caller's cwd would keep its filesystem busy (no unmount)
    // and a deleted directory alive. Every path in the loaded configuration is absolute by now.
    process.chdir('/');
  }
  return runDaemon(options);
}

function reloadInputOf(p: ParsedCommand): DaemonOptions['reloadInput'] {
  return { flags: configFlagsOf(p), env: process.env, homeDir: homedir(), cwd: process.cwd() };
}

function reportToParent(outcome: StartupOutcome): void {
  try {
    writeSync(READY_FD, `${JSON.stringify(outcome)}\n`);
    closeSync(READY_FD);
  } catch (err) {
    // The parent gave up waiting (timeout, Ctrl-C): the daemon runs on regardless.
    process.stderr.write(`autopilotd: could not report startup to the parent: ${(err as Error).message}\n`);
  }
}

async function daemonize(p: ParsedCommand, loaded: LoadedConfig): Promise<number> {
  const { config } = loaded;
  const running = await currentDaemon(config.socket_path);
  if (running !== null) {
    throw new CliFailure(`already running (pid ${running.daemon.pid}, socket ${config.socket_path})`, EXIT.failure);
  }
  // The daemon's locks would refuse a second daemon on this pid file anyway; saying so here, before
  // anything is spawned or written, also tells where the running one listens.
  const recorded = await recordedDaemon(config.pid_file);
  if (recorded !== null) {
    if (recorded.socketPath !== config.socket_path) process.stderr.write(movedNotice(recorded, loaded));
    throw new CliFailure(`already running (pid ${recorded.record.pid}, socket ${recorded.socketPath})`, EXIT.failure);
  }
  const logPath = daemonLogPath(config);
  const stderrPath = daemonStderrPath(config);
  // Where both files end now: a failure quotes only what this start's daemon wrote, not the lines
  // of earlier runs (issue #15).
  const logMark = markLogEnd(logPath);
  const raw = openRawOutputFile(loaded, stderrPath);
  const nodeFlags = [...new Set([...process.execArgv, ...DAEMON_NODE_FLAGS])];
  const child = spawn(process.execPath, [...nodeFlags, daemonProgram(), ...daemonArgv(p)], {
    detached: true,
    stdio: ['ignore', raw.fd, raw.fd, 'pipe'],
    env: process.env,
  });
  closeSync(raw.fd);
  const pid = child.pid!;
  const thisStart = (): string => `last log lines from ${logPath}:\n${linesOfThisStart(logPath, logMark, pid, config.logs.max_files)}${rawOutput(stderrPath, raw.mark)}`;
  const timeoutMs = startTimeoutMs(config, process.env);
  const report = await readOutcome(child, timeoutMs);
  if (report.kind === 'timeout' || report.kind === 'garbled') {
    // Never a half-started daemon behind: one that has not said it started is stopped.
    const what = report.kind === 'timeout' ? `did not report within ${timeoutMs / 1000} s` : 'sent a startup report that is not one';
    const how = await stopUnreportedDaemon(child, config);
    throw new CliFailure(`the daemon ${what}; ${how}\n${thisStart()}`, EXIT.failure);
  }
  child.unref();
  if (report.kind === 'closed') {
    throw new CliFailure(`the daemon did not start; ${thisStart()}`, EXIT.failure);
  }
  const outcome = report.outcome;
  if (!outcome.ok) {
    // A configuration the daemon refused (`[cgroup] mode = "required"` without a cgroup): exit 78.
    const config = outcome.code === 'cgroup_unavailable';
    const extra = outcome.code === 'already_running' || config ? '' : `\n${thisStart()}`;
    throw new CliFailure(`${outcome.message}${extra}`, config ? EXIT.config : EXIT.failure);
  }
  if (outcome.workerPid === null) {
    throw new CliFailure(`daemon started (pid ${outcome.pid}) but the worker did not: it is ${outcome.workerState} and will be retried.\n${thisStart()}`, EXIT.failure);
  }
  writeOut(`autopilotd started: pid ${outcome.pid}, worker pid ${outcome.workerPid}\n`);
  // Once, here: the daemon's own line about it went to its log file.
  if (outcome.nativeMissing) process.stderr.write(`autopilotd: warning: native helper not loaded (${outcome.nativeMissing}); sd_notify goes through systemd-notify, which needs NotifyAccess=all\n`);
  return EXIT.ok;
}

/** Options of `start` the detached daemon gets again, as given. */
const PASSED_ON = ['config', 'instance', 'project', 'workdir'] as const;

/**
 * The detached daemon's command line, built from the parsed one rather than from process.argv: a
 * global option may come before the command word (`autopilotd --config P start`), and the worker's
 * argv goes last, after `--`. Values are passed inline (`--config=P`), so one that starts with `-`
 * is still taken as the value.
 */
export function daemonArgv(p: ParsedCommand): string[] {
  const argv = [p.command, '--foreground', '--daemonized'];
  for (const name of PASSED_ON) {
    const value = p.values[name];
    if (typeof value === 'string') argv.push(`--${name}=${value}`);
  }
  if (p.rest !== null) argv.push('--', ...p.rest);
  return argv;
}

/**
 * The script the detached daemon runs: this bundle (dist/bin/daemon.cjs, daemon-main.ts), which
 * holds `start` and the daemon without the CLI bundle. Unbundled (dist/src), the CLI that runs.
 */
function daemonProgram(): string {
  const self = fileURLToPath(import.meta.url);
  return self.endsWith('.cjs') ? self : process.argv[1]!;
}

async function currentDaemon(socketPath: string): Promise<StatusData | null> {
  try {
    return (await sendRequest(socketPath, 'status', undefined, { timeoutMs: 5000 })) as StatusData;
  } catch (err) {
    if ((err as { code?: string }).code === 'not_running') return null;
    throw new CliFailure(`cannot tell whether a daemon runs at ${socketPath}: ${(err as Error).message}`, EXIT.failure);
  }
}

async function recordedDaemon(pidFile: string): ReturnType<typeof daemonFromPidFile> {
  try {
    return await daemonFromPidFile(pidFile, 5000);
  } catch (err) {
    if (err instanceof CliFailure) throw err;
    throw new CliFailure(`cannot tell whether the daemon of ${pidFile} runs: ${(err as Error).message}`, EXIT.failure);
  }
}

/** What came of the wait on the daemon's report: it, garbage, the pipe closed without one, or nothing in time. */
type Report = { kind: 'report'; outcome: StartupOutcome } | { kind: 'garbled' } | { kind: 'closed' } | { kind: 'timeout' };

function readOutcome(child: ReturnType<typeof spawn>, timeoutMs: number): Promise<Report> {
  const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream & { destroy(): void };
  return new Promise((resolve) => {
    let text = '';
    const finish = (value: Report): void => {
      clearTimeout(timer);
      pipe.removeAllListeners('data');
      pipe.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    pipe.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline === -1) return;
      try {
        finish({ kind: 'report', outcome: JSON.parse(text.slice(0, newline)) as StartupOutcome });
      } catch (err) {
        // Not the daemon's report: a failed start, with the log shown after this line.
        process.stderr.write(`autopilotd: the daemon's startup report is not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 200))}\n`);
        finish({ kind: 'garbled' });
      }
    });
    pipe.on('end', () => finish({ kind: 'closed' }));
    pipe.on('error', (err: Error) => {
      process.stderr.write(`autopilotd: reading the daemon's startup report: ${err.message}\n`);
      finish({ kind: 'closed' });
    });
  });
}

/** Bound on the raw-output file before a start truncates it. */
const MAX_STDERR_FILE_BYTES = 1024 * 1024;

/**
 * The detached daemon's stdout and stderr, appended to. Opened without following a symbolic link
 * and checked on the fd (private-file.ts); crash traces accumulate there only if the daemon keeps
 * dying, so past a bound the file is cut through that same fd: reopening the path with 'w' would
 * truncate whatever a link planted there points to (issue #14, item 6).
 */
function openRawOutputFile(loaded: LoadedConfig, path: string): { fd: number; mark: LogMark } {
  let opened;
  try {
    opened = openPrivateFile(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT);
  } catch (err) {
    if (err instanceof UnsafeFileError) throw logFileConfigError(loaded, err.text);
    throw err;
  }
  try {
    let size = opened.stats.size;
    if (size > BigInt(MAX_STDERR_FILE_BYTES)) {
      ftruncateSync(opened.fd, 0);
      size = 0n;
    }
    return { fd: opened.fd, mark: { dev: opened.stats.dev, ino: opened.stats.ino, size: Number(size) } };
  } catch (err) {
    closeSync(opened.fd);
    throw err;
  }
}

/** The daemon's raw output since it was started, when there is any (a crash trace). */
function rawOutput(path: string, mark: LogMark): string {
  const lines = readLinesSince(path, mark, 20, 1);
  return lines.length === 0 ? '' : `\nits raw output (${path}):\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/**
 * The last lines this start's daemon logged: written since the mark, and from its own "daemon
 * started pid=P" line on (a daemon of a simultaneous start may share the file).
 */
function linesOfThisStart(path: string, mark: LogMark, pid: number, maxFiles: number): string {
  const lines = readLinesSince(path, mark, 20, maxFiles);
  let own = lines.length - 1;
  while (own >= 0 && !(lines[own] as string).includes(` daemon started pid=${pid} `)) own -= 1;
  const quoted = own === -1 ? lines : lines.slice(own);
  return quoted.length === 0 ? '  (nothing was logged)' : quoted.map((l) => `  ${l}`).join('\n');
}
