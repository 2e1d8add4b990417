// sd_notify(3) for the daemon: tells the service manager that it is ready, what it is doing, that
// it is alive (watchdog), reloading or stopping. Only when NOTIFY_SOCKET is set. Through the native
// helper, the datagram comes from the daemon's own pid (NotifyAccess=main is enough); without it,
// through the systemd-notify binary, whose messages come from its own pid unless it may stamp ours
// (root), so the unit then needs NotifyAccess=all: `via` tells install-service which (issue #16).

import { spawn } from 'node:child_process';
import type { NativeLoad } from './native.js';

export type NotifyVia = 'addon' | 'systemd-notify';

export interface SdNotifier {
  readonly via: NotifyVia;
  readonly socketPath: string;
  /** Sends `message` (newline-separated VAR=value). Never throws: a failure reaches onError. */
  send(message: string): void;
}

export interface SdNotifierOptions {
  native: NativeLoad;
  /** Hears of a failed send: once per kind of failure, not on every watchdog tick. */
  onError(message: string): void;
  /** The fallback binary; found on PATH by default. */
  systemdNotify?: string;
}

/** The notifier NOTIFY_SOCKET asks for, or null when the daemon is not run by a service manager. */
export function notifierFromEnv(env: Record<string, string | undefined>, opts: SdNotifierOptions): SdNotifier | null {
  const socketPath = env.NOTIFY_SOCKET;
  if (socketPath === undefined || socketPath === '') return null;
  const reported = new Set<string>();
  const failed = (kind: string, message: string): void => {
    if (reported.has(kind)) return;
    reported.add(kind);
    opts.onError(message);
  };
  if (opts.native.loaded) {
    const { helper } = opts.native;
    return {
      via: 'addon',
      socketPath,
      send(message) {
        try {
          helper.notify(socketPath, message);
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          failed(e.code ?? e.message, `sd_notify to ${socketPath}: ${e.message}`);
        }
      },
    };
  }
  return systemdNotifyNotifier(socketPath, opts.systemdNotify ?? 'systemd-notify', env, failed);
}

/**
 * One systemd-notify process per message, one at a time: spawned in parallel, RELOADING=1 and the
 * READY=1 after it could reach the manager in the wrong order. --no-block skips its barrier, a
 * round trip that would wait on a wedged manager.
 */
function systemdNotifyNotifier(socketPath: string, binary: string, env: Record<string, string | undefined>, failed: (kind: string, message: string) => void): SdNotifier {
  const queue: string[] = [];
  let running = false;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  const next = (): void => {
    const message = queue.shift();
    if (message === undefined) {
      running = false;
      return;
    }
    running = true;
    let stderr = '';
    let spawnFailed = false;
    let child;
    try {
      child = spawn(binary, ['--no-block', ...message.split('\n').filter((l) => l !== '')], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      failed('spawn', `sd_notify via ${binary}: ${(err as Error).message}`);
      next();
      return;
    }
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnFailed = true;
      failed(err.code ?? 'spawn', `sd_notify via ${binary}: ${err.message}`);
    });
    // After a failed spawn too, with a negative errno for a code: already reported.
    child.on('close', (code, signal) => {
      if (spawnFailed) return next();
      if (code !== 0 && code !== null) failed(`exit ${code}`, `sd_notify via ${binary} exited ${code}: ${stderr.trim() || '(no output)'}`);
      else if (signal !== null) failed(signal, `sd_notify via ${binary} killed by ${signal}`);
      next();
    });
  };
  return {
    via: 'systemd-notify',
    socketPath,
    send(message) {
      queue.push(message);
      if (!running) next();
    },
  };
}

/**
 * How often to send WATCHDOG=1: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, when the
 * watchdog is meant for this process (WATCHDOG_PID unset or ours); null otherwise.
 */
export function watchdogIntervalMs(env: Record<string, string | undefined>, pid: number): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[1-9]\d*$/.test(usec)) return null;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return null;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

/** The messages the daemon sends. STATUS is one line: a newline would start another assignment. */
export const sdMessage = {
  ready: (): string => 'READY=1',
  stopping: (): string => 'STOPPING=1',
  watchdog: (): string => 'WATCHDOG=1',
  status: (text: string): string => `STATUS=${text.replace(/[\r\n]+/g, ' ')}`,
  /** `monotonicUsec`: CLOCK_MONOTONIC now, which systemd needs to tell this reload from a later one. */
  reloading: (monotonicUsec: bigint): string => `RELOADING=1\nMONOTONIC_USEC=${monotonicUsec}`,
};

/** CLOCK_MONOTONIC in µs: process.hrtime is that clock on Linux. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}
