// Figures for the reliability cases: a process's RSS and open fds, a directory's disk use, the
// daemon's memory-sample lines (poll lateness), and a status prober that measures round trips.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/control/client.js';

export const MIB = 1024 * 1024;

/** VmRSS of `pid` in bytes, or null when it is gone. */
export function rssOf(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** Number of open fds of `pid`, or null when it is gone. */
export function fdsOf(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Bytes used by the regular files in `dir` (not recursive; logs are flat). */
export function dirBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) total += st.blocks * 512;
    } catch {
      // rotated away meanwhile
    }
  }
  return total;
}

export const mib = (bytes: number | null): string => (bytes === null ? 'gone' : `${(bytes / MIB).toFixed(1)}MiB`);

/** Lateness of each memory poll: (t[i] - t[i-1]) - next_poll_ms[i-1], from the debug sample lines. */
export function pollLateness(logText: string, sinceMs = 0): { samples: number; maxLateMs: number; p99LateMs: number } {
  const late: number[] = [];
  let prev: { at: number; next: number } | null = null;
  for (const line of logText.split('\n')) {
    const m = /^(\S+) \S+ memory level=\S+ .*next_poll_ms=(\d+)/.exec(line);
    if (m === null) continue;
    const at = Date.parse(m[1]!);
    if (!(at >= sinceMs)) continue;
    if (prev !== null) late.push(at - prev.at - prev.next);
    prev = { at, next: Number(m[2]) };
  }
  late.sort((a, b) => a - b);
  return {
    samples: late.length + (prev === null ? 0 : 1),
    maxLateMs: late.length === 0 ? 0 : late[late.length - 1]!,
    p99LateMs: late.length === 0 ? 0 : late[Math.min(late.length - 1, Math.floor(late.length * 0.99))]!,
  };
}

/** One `status` round trip: "ok(<ms>ms)" or "failed(<error>)". */
export async function probeOnce(socketPath: string, timeoutMs = 5000): Promise<string> {
  const started = performance.now();
  try {
    await sendRequest(socketPath, 'status', undefined, { timeoutMs });
    return `ok(${(performance.now() - started).toFixed(0)}ms)`;
  } catch (err) {
    return `failed(${(err as Error).message.replace(/\s+/g, '_').slice(0, 80)})`;
  }
}

/** Round trips of `status` every `everyMs` until stop(): latencies, failures and the worst. */
export class StatusProber {
  readonly latencies: number[] = [];
  readonly failures: string[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly socketPath: string, private readonly everyMs = 200, private readonly timeoutMs = 5000) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      try {
        await sendRequest(this.socketPath, 'status', undefined, { timeoutMs: this.timeoutMs });
        this.latencies.push(performance.now() - started);
      } catch (err) {
        this.failures.push((err as Error).message);
        this.latencies.push(performance.now() - started);
      }
      await new Promise((r) => setTimeout(r, this.everyMs));
    }
  }

  async stop(): Promise<{ count: number; failed: number; p50: number; max: number }> {
    this.running = false;
    await this.done;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      count: sorted.length,
      failed: this.failures.length,
      p50: sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)]!,
      max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    };
  }
}

/** Samples `fn` every `everyMs` until stop(), keeping the maximum. */
export class MaxSampler {
  max = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(fn: () => number | null, everyMs = 100) {
    this.timer = setInterval(() => {
      const v = fn();
      if (v !== null && v > this.max) this.max = v;
    }, everyMs);
  }
  stop(): number {
    clearInterval(this.timer);
    return this.max;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
