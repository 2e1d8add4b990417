// How long the daemon waits before the next memory sample. Far from every threshold it polls at
// poll_interval_ms; close to one it polls sooner, so that a leak is seen soon after it crosses,
// without paying for a /proc scan every 100 ms all day.

/** Never poll more often than this: a tree scan costs a few ms of CPU. */
export const POLL_FLOOR_MS = 100;

/** Longest wait while the guard's verdict is settled (low with nothing to kill, or cooling down). */
export const SETTLED_POLL_MS = 1000;

/**
 * Poll after this fraction of the predicted time to reach a threshold, so that growth up to
 * 1 / fraction times the measured rate is still sampled no later than when it crosses.
 */
export const TIME_TO_THRESHOLD_FRACTION = 0.5;

const MIB = 1024 * 1024;

/** Growth assumed before two samples give a rate: fast enough to cover a Node heap blowing up. */
export const UNKNOWN_GROWTH_BYTES_PER_S = 100 * MIB;

/**
 * Growth assumed at least, even when the measured rate is lower or negative: memory use is bursty,
 * and a stable reading says little about the next second. It keeps the interval shrinking with
 * headroom instead of jumping to poll_interval_ms as soon as growth pauses.
 */
export const BASELINE_GROWTH_BYTES_PER_S = 20 * MIB;

export interface PollIntervalConfig {
  poll_interval_ms: number;
  min_available_bytes: number;
  critical_threshold_bytes: number;
  worker_max_bytes: number | null;
}

/** The figures of a sample that polling depends on. */
export interface PollPoint {
  atMs: number;
  availableBytes: number;
  /** The tree figure compared with worker_max_bytes (treeMemoryBytes: RSS + swap). */
  treeBytes: number;
}

/**
 * Time to wait, clamped to [POLL_FLOOR_MS, poll_interval_ms], for a headroom (bytes left before a
 * threshold) that shrinks at growthBytesPerMs (null = unknown). Non-decreasing in headroom.
 */
export function intervalForHeadroomMs(
  headroomBytes: number,
  growthBytesPerMs: number | null,
  config: Pick<PollIntervalConfig, 'poll_interval_ms'>,
): number {
  const ceilingMs = config.poll_interval_ms;
  // A configured interval below the floor wins: the operator asked for it.
  const floorMs = Math.min(POLL_FLOOR_MS, ceilingMs);
  if (headroomBytes <= 0) return floorMs;
  const assumedBytesPerMs =
    growthBytesPerMs === null
      ? UNKNOWN_GROWTH_BYTES_PER_S / 1000
      : Math.max(growthBytesPerMs, BASELINE_GROWTH_BYTES_PER_S / 1000);
  const waitMs = Math.floor((TIME_TO_THRESHOLD_FRACTION * headroomBytes) / assumedBytesPerMs);
  return Math.min(ceilingMs, Math.max(floorMs, waitMs));
}

/**
 * The next interval from the current sample and, when there is one, the previous sample (which
 * gives the growth rates). The system side counts headroom above the higher of the two byte
 * thresholds (normally min_available_bytes); the tree side counts headroom below worker_max_bytes.
 */
export function nextPollIntervalMs(
  current: PollPoint,
  previous: PollPoint | null,
  config: PollIntervalConfig,
): number {
  const elapsedMs = previous === null ? 0 : current.atMs - previous.atMs;
  // No rate across a clock step backwards or two samples at the same instant.
  const rate = (shrinkBytes: number): number | null =>
    previous === null || elapsedMs <= 0 ? null : shrinkBytes / elapsedMs;

  const systemThresholdBytes = Math.max(config.min_available_bytes, config.critical_threshold_bytes);
  let intervalMs = intervalForHeadroomMs(
    current.availableBytes - systemThresholdBytes,
    rate(previous === null ? 0 : previous.availableBytes - current.availableBytes),
    config,
  );
  if (config.worker_max_bytes !== null) {
    const treeIntervalMs = intervalForHeadroomMs(
      config.worker_max_bytes - current.treeBytes,
      rate(previous === null ? 0 : current.treeBytes - previous.treeBytes),
      config,
    );
    intervalMs = Math.min(intervalMs, treeIntervalMs);
  }
  return intervalMs;
}
