// Runs one notification command: `input` on its stdin, its output kept (bounded) for the log, and
// after `timeoutMs` it is stopped with its whole tree (src/os/tree-stop.ts). It never holds up
// supervision: it is spawned detached (its own session and process group, so a Ctrl-C to the
// daemon's terminal does not reach it either), and nothing waits on it but its own promise.
//
// Its tree is found as the worker's is, by a marker in its environment: AUTOPILOTD_INSTANCE set to
// a value of its own (`marker`), never the worker's, so a worker tree stop or the memory guard never
// counts a notification as part of the worker, and a stop of one notification reaches no other.

import { spawn, type ChildProcess } from 'node:child_process';
import { monotonicMs } from './monotonic-clock.js';
import type { ProcTable } from './proc-table.js';
import { INSTANCE_ENV, type ProcessKey } from './process-tree.js';
import { stopTree } from './tree-stop.js';

/** Each of stdout and stderr is kept up to this many bytes for the log; the rest is counted. */
export const NOTIFY_OUTPUT_MAX_BYTES = 4096;

export interface NotifyCommandRequest {
  argv: string[];
  cwd: string;
  /** The environment without the marker; the marker is added here. */
  env: Record<string, string>;
  /** The value of AUTOPILOTD_INSTANCE for this run alone. */
  marker: string;
  input: string;
  timeoutMs: number;
  table: ProcTable;
  uid: number;
  /** The daemon and its ancestors: never signalled. */
  protectedPids: () => ReadonlySet<number>;
}

export interface CapturedOutput {
  /** At most NOTIFY_OUTPUT_MAX_BYTES of it, decoded as UTF-8. */
  text: string;
  droppedBytes: number;
}

export type NotifyOutcome =
  | { kind: 'exited'; code: number }
  | { kind: 'signalled'; signal: string }
  /** Still running after timeoutMs: its tree was stopped; `survivors` outlived SIGKILL. */
  | { kind: 'timed-out'; survivors: number[] }
  | { kind: 'spawn-failed'; reason: string };

export interface NotifyResult {
  outcome: NotifyOutcome;
  durationMs: number;
  /** The command's pid, null when it was not spawned. */
  pid: number | null;
  stdout: CapturedOutput;
  stderr: CapturedOutput;
}

/** Resolves once the command ended (its output closed) or was stopped after its timeout; never rejects. */
export function runNotifyCommand(req: NotifyCommandRequest): Promise<NotifyResult> {
  const startMs = monotonicMs();
  const elapsedMs = (): number => Math.round(monotonicMs() - startMs);
  const stdout = new Capture();
  const stderr = new Capture();
  const result = (outcome: NotifyOutcome, pid: number | null): NotifyResult => ({ outcome, durationMs: elapsedMs(), pid, stdout: stdout.result(), stderr: stderr.result() });
  const [command, ...args] = req.argv as [string, ...string[]];
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: req.cwd, env: { ...req.env, [INSTANCE_ENV]: req.marker }, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return Promise.resolve(result({ kind: 'spawn-failed', reason: `spawn ${command}: ${e.code ?? e.message}` }, null));
  }
  return new Promise((resolve) => {
    let key: ProcessKey | null = null;
    let timedOut: Promise<number[]> | null = null;
    let exit: { code: number | null; signal: string | null } | null = null;
    let settled = false;
    const finish = (outcome: NotifyOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result(outcome, child.pid ?? null));
    };
    const timer = setTimeout(() => {
      timedOut = stopTree({
        table: req.table,
        identity: { root: key, pgid: key?.pid ?? null, instanceId: req.marker, uid: req.uid, protectedPids: req.protectedPids() },
        graceMs: 0,
      }).then((report) => report.survivors, () => []);
      void timedOut.then(async (survivors) => {
        // A process that escaped may still hold the pipes: let go of them rather than wait for EOF.
        child.stdout?.destroy();
        child.stderr?.destroy();
        if (exit === null) await new Promise((r) => child.once('exit', r));
        finish({ kind: 'timed-out', survivors });
      });
    }, req.timeoutMs);
    child.once('spawn', () => {
      // Not reaped before its exit event: its pid cannot be anyone else's yet.
      const startTimeTicks = req.table.read(child.pid!)?.startTimeTicks;
      key = startTimeTicks === undefined ? null : { pid: child.pid!, startTimeTicks };
      // A command that does not read its stdin closes the pipe: EPIPE is its choice, not a failure.
      child.stdin!.on('error', () => {});
      child.stdin!.end(req.input);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) finish({ kind: 'spawn-failed', reason: `spawn ${command}: ${err.code ?? err.message}` });
    });
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('exit', (code, signal) => {
      exit = { code, signal };
    });
    // The run ends when the command has exited and its output is closed (a background child that
    // holds the pipes keeps it running, and is stopped with the tree at the timeout).
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (timedOut !== null || child.pid === undefined) return;
      finish(signal !== null ? { kind: 'signalled', signal } : { kind: 'exited', code: code ?? 0 });
    });
  });
}

class Capture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private dropped = 0;

  push(chunk: Buffer): void {
    const take = Math.min(Math.max(0, NOTIFY_OUTPUT_MAX_BYTES - this.kept), chunk.length);
    if (take > 0) {
      this.chunks.push(chunk.subarray(0, take));
      this.kept += take;
    }
    this.dropped += chunk.length - take;
  }

  result(): CapturedOutput {
    return { text: Buffer.concat(this.chunks).toString('utf8'), droppedBytes: this.dropped };
  }
}
