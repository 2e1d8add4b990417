// CPU time the worker tree used between two samples, from each member's cumulative stat counters.
// The tree's plain sum can go down (a member exits and takes its counters along), so each process
// (pid and start time) is compared with itself: a member seen before adds what it used since, a new
// one all it used so far (it started after the last sample, or was not a member then). A member's
// counters include the children it has reaped (cutime + cstime), so a short-lived child that came
// and went between two samples still counts once its parent waited for it.

export interface CpuCounters {
  pid: number;
  startTimeTicks: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** cutime + cstime, in clock ticks. */
  childCpuTicks: number;
}

/** Each member's cumulative ticks, keyed by pid and start time. */
export type CpuReading = ReadonlyMap<string, number>;

const keyOf = (p: CpuCounters): string => `${p.pid}:${p.startTimeTicks}`;

export function readCpu(members: readonly CpuCounters[]): CpuReading {
  return new Map(members.map((p) => [keyOf(p), p.cpuTicks + p.childCpuTicks]));
}

/** Ticks used between `before` (null: none yet, everything counts) and `after`. */
export function cpuTicksBetween(before: CpuReading | null, after: CpuReading): number {
  let ticks = 0;
  for (const [key, total] of after) {
    const earlier = before?.get(key) ?? 0;
    // Counters never go down for one process; a smaller value would be a misread, not negative use.
    ticks += Math.max(0, total - earlier);
  }
  return ticks;
}

export function ticksToMs(ticks: number, ticksPerSecond: number): number {
  return (ticks * 1000) / ticksPerSecond;
}
