// The daemon's monotonic clock: milliseconds since this process started, as performance.now()
// counts them, without loading node:perf_hooks (~0.8 MiB of the daemon's RSS, BENCHMARKS.md
// "Daemon memory"). Both read libuv's uv_hrtime (CLOCK_MONOTONIC) from the process's start.

/** Monotonic milliseconds since the process started; never goes back with the wall clock. */
export function monotonicMs(): number {
  return process.uptime() * 1000;
}
