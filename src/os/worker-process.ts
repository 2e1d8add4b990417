// Spawns the worker in its own session and process group and reports its life as events.
// Exit is observed through the child's 'exit' event (libuv's SIGCHLD handling), never by polling.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TerminalOutput } from './terminal-output.js';
import { childRegistry } from './child-registry.js';

export interface WorkerSpawnRequest {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /**
   * Where the foreground passes the worker's stdout and stderr on, unchanged. Output is always piped
   * through the daemon, which must see it to judge a stall (issue #17); it goes to `onOutput` too.
   */
  passThrough?: { stdout: TerminalOutput; stderr: TerminalOutput };
  /**
   * Runs the synchronous spawn (libuv forks inside child_process.spawn) inside, e.g. with the
   * daemon moved into the worker's cgroup leaf, so the child is born there (worker-cgroups.ts).
   */
  around?: <T>(spawn: () => T) => T;
}

export interface WorkerCallbacks {
  onSpawned(pid: number): void;
  onSpawnFailed(reason: string): void;
  onExit(code: number | null, signal: string | null): void;
  onOutput?(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** A failure after the spawn that is not an exit: a failed kill(), a pipe error. */
  onError(message: string): void;
}

/** A spawned worker's handle, kept to let go of its output pipes once its tree is gone. */
export interface WorkerHandle {
  /**
   * Destroys the output pipes without waiting for their EOF: a process that escaped the tree stop
   * may hold their write ends forever, and an open pipe keeps the daemon's event loop alive (#15).
   */
  releaseOutput(): void;
}

/**
 * Checks what would make the spawn fail, so the log says why in words instead of a bare ENOENT
 * (Node reports a missing cwd and a missing command with the same code).
 */
export function checkSpawnable(req: Pick<WorkerSpawnRequest, 'argv' | 'cwd' | 'env'>): string | null {
  try {
    if (!statSync(req.cwd).isDirectory()) return `working_dir ${req.cwd} is not a directory`;
  } catch (err) {
    return `working_dir ${req.cwd} is not usable (${(err as NodeJS.ErrnoException).code})`;
  }
  const command = req.argv[0];
  if (command === undefined || command === '') return 'the worker command is empty';
  const resolved = resolveCommand(command, req.cwd, req.env.PATH ?? '');
  if (resolved === null) return `command not found: ${command} (searched PATH=${req.env.PATH ?? ''})`;
  try {
    accessSync(resolved, constants.X_OK);
  } catch (err) {
    return `command ${resolved} is not executable (${(err as NodeJS.ErrnoException).code})`;
  }
  return null;
}

function resolveCommand(command: string, cwd: string, path: string): string | null {
  if (command.includes('/')) {
    const full = command.startsWith('/') ? command : join(cwd, command);
    return isFile(full) ? full : null;
  }
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const full = join(dir, command);
    if (isFile(full)) return full;
  }
  return null;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // absent or unreadable: keep searching PATH
  }
}

/** Starts the worker. Exactly one of onSpawned / onSpawnFailed is called, then onExit if it ran. */
export function spawnWorker(req: WorkerSpawnRequest, cb: WorkerCallbacks): WorkerHandle | null {
  const problem = checkSpawnable(req);
  if (problem !== null) {
    queueMicrotask(() => cb.onSpawnFailed(problem));
    return null;
  }
  const [command, ...args] = req.argv as [string, ...string[]];
  let child: ChildProcess;
  try {
    const around = req.around ?? ((run) => run());
    child = around(() => spawn(command, args, {
      cwd: req.cwd,
      env: req.env,
      // detached = setsid(): a new session and process group, so the group can be signalled as one
      // and the worker's terminal signals (Ctrl-C in the foreground) are the daemon's to relay.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    }));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    queueMicrotask(() => cb.onSpawnFailed(`spawn ${command}: ${e.code ?? e.message}`));
    return null;
  }
  // Synchronously, before any walk can see it: this child is the worker, not a helper (child-registry.ts).
  if (child.pid !== undefined) childRegistry()?.markWorker(child.pid);
  let spawned = false;
  child.once('spawn', () => {
    spawned = true;
    cb.onSpawned(child.pid!);
  });
  child.on('error', (err: NodeJS.ErrnoException) => {
    // Before 'spawn' this is a spawn failure; after it, a failed kill() or pipe error, not an exit.
    if (!spawned) cb.onSpawnFailed(`spawn ${command}: ${err.code ?? err.message}`);
    else cb.onError(`worker pid ${child.pid}: ${err.message}`);
  });
  child.once('exit', (code, signal) => {
    if (spawned) cb.onExit(code, signal);
  });
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = child[name];
    if (stream === null) continue;
    stream.on('error', (err: Error) => cb.onError(`worker pid ${child.pid}: reading its ${name}: ${err.message}`));
    const target = req.passThrough?.[name];
    stream.on('data', (chunk: Buffer) => {
      target?.write(chunk, stream);
      cb.onOutput?.(name, chunk);
    });
  }
  return {
    releaseOutput: () => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
  };
}
