// Runs one health probe (issue #17): `[health].probe_command` in the worker's directory and
// environment, in a process group of its own, with a deadline. A probe past its deadline has no
// claim on a graceful stop: its group gets SIGKILL at once. Its leader's exit does not end the
// matter either: whatever it left running in its group (`sh -c 'slow &'`) is killed too, so probes
// never pile up. The caller runs one probe at a time.
//
// Why signalling the group is sound: until the leader's exit event the leader is unreaped, so its
// pid, and with it the group id, cannot be handed out again. After it, only processes still in the
// group that carry the worker's instance marker (the probe's environment has it) are signalled,
// each checked by pid and start time: a stranger that got the number cannot carry the marker.
import { spawn, type ChildProcess } from 'node:child_process';
import { monotonicMs } from './monotonic-clock.js';
import type { ProcTable } from './proc-table.js';
import { INSTANCE_ENV } from './process-tree.js';
import { signalGroup, signalIfSame } from './signal.js';

export interface ProbeRequest {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
}

export interface ProbeResult {
  ok: boolean;
  /** In words, for the log: `exit code 0`, `exit code 3`, `killed by SIGSEGV`, `timed out after 5000 ms`, `spawn failed: ENOENT`. */
  detail: string;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The probe's pid (its group's id), or null when it could not be spawned. */
  pid: number | null;
  durationMs: number;
  /** Leftover group members killed after the leader ended. */
  leftoversKilled: number[];
  /** The last bytes it wrote (stdout and stderr together), trimmed, for the log. */
  outputTail: string;
}

/** Kept of the probe's output, for the log line of a failure. */
const OUTPUT_TAIL_BYTES = 512;

export interface RunningProbe {
  pid: number | null;
  result: Promise<ProbeResult>;
  /** Kills the probe's group now (shutdown); the result still settles. */
  cancel(): void;
}

export function runProbe(req: ProbeRequest, table: ProcTable): RunningProbe {
  const startedAt = monotonicMs();
  const [command, ...args] = req.argv as [string, ...string[]];
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { pid: null, cancel: () => {}, result: Promise.resolve(spawnFailed(e.code ?? e.message, startedAt)) };
  }
  let tail = Buffer.alloc(0);
  const keep = (chunk: Buffer): void => {
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > OUTPUT_TAIL_BYTES) tail = tail.subarray(tail.length - OUTPUT_TAIL_BYTES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  let timedOut = false;
  const killGroup = (): void => {
    if (exited || child.pid === undefined) return;
    // The leader is not reaped yet (no exit event): the group id is still the probe's.
    signalGroup(child.pid, 'SIGKILL');
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, req.timeoutMs);
  const result = new Promise<ProbeResult>((resolve) => {
    let spawned = false;
    child.once('spawn', () => (spawned = true));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (spawned) return; // a failed kill() after the spawn; the exit still comes
      clearTimeout(timer);
      exited = true;
      resolve(spawnFailed(err.code ?? err.message, startedAt));
    });
    child.once('exit', (code, signal) => {
      if (child.pid === undefined) return; // never ran: 'error' settled it
      clearTimeout(timer);
      exited = true;
      const leftoversKilled = killLeftovers(table, child.pid!, req.env[INSTANCE_ENV]);
      // Leftovers may hold the pipes open: let go of them rather than wait for their EOF.
      child.stdout?.destroy();
      child.stderr?.destroy();
      const durationMs = Math.round(monotonicMs() - startedAt);
      const detail = timedOut ? `timed out after ${req.timeoutMs} ms` : signal !== null ? `killed by ${signal}` : `exit code ${code}`;
      resolve({
        ok: !timedOut && code === 0, detail, code, signal, timedOut, pid: child.pid!, durationMs, leftoversKilled,
        outputTail: tail.toString('utf8').trim(),
      });
    });
  });
  return { pid: child.pid ?? null, result, cancel: killGroup };
}

function spawnFailed(reason: string, startedAt: number): ProbeResult {
  return {
    ok: false, detail: `spawn failed: ${reason}`, code: null, signal: null, timedOut: false, pid: null,
    durationMs: Math.round(monotonicMs() - startedAt), leftoversKilled: [], outputTail: '',
  };
}

/** SIGKILLs what is still in the probe's group after its leader was reaped (see the header). */
function killLeftovers(table: ProcTable, pgid: number, marker: string | undefined): number[] {
  // Signal 0 only asks whether the group has a member; nothing is delivered.
  if (marker === undefined || signalGroup(pgid, 0) === 'gone') return [];
  const killed: number[] = [];
  for (const p of table.scan()) {
    if (p.pgid !== pgid || p.state === 'Z' || table.hasEnvMarker(p.pid, INSTANCE_ENV, marker) !== true) continue;
    if (signalIfSame(table, p, 'SIGKILL') === 'sent') killed.push(p.pid);
  }
  return killed;
}
