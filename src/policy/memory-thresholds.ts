// Sanity warnings about memory thresholds against the machine's RAM, printed at start-up and by
// `config show`. They warn rather than refuse: the operator may know better (a dedicated box).

export interface MemoryThresholdsConfig {
  min_available_bytes: number;
  critical_threshold_bytes: number;
  worker_max_bytes: number | null;
}

/** Above this share of RAM, a "keep this much free" threshold keeps the guard firing on a busy box. */
export const MAX_THRESHOLD_SHARE_OF_RAM = 0.2;

const MIB = 1024 * 1024;

function formatMiB(bytes: number): string {
  const mib = bytes / MIB;
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`;
}

function formatPercent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

export function thresholdWarnings(config: MemoryThresholdsConfig, totalBytes: number): string[] {
  if (!(totalBytes > 0)) {
    throw new RangeError(`thresholdWarnings: totalBytes must be a positive number, got ${totalBytes}`);
  }
  const warnings: string[] = [];
  const total = formatMiB(totalBytes);
  for (const key of ['min_available_bytes', 'critical_threshold_bytes'] as const) {
    const share = config[key] / totalBytes;
    if (share > MAX_THRESHOLD_SHARE_OF_RAM) {
      warnings.push(
        `memory.${key} is ${formatMiB(config[key])}, ${formatPercent(share)} of total RAM (${total}); ` +
          `above ${formatPercent(MAX_THRESHOLD_SHARE_OF_RAM)} the memory guard may kill processes ` +
          `on a machine that is merely busy`,
      );
    }
  }
  if (config.worker_max_bytes !== null && config.worker_max_bytes > totalBytes) {
    warnings.push(
      `memory.worker_max_bytes is ${formatMiB(config.worker_max_bytes)}, more than total RAM ` +
        `(${total}); the machine runs out of memory before the tree limit can trigger`,
    );
  }
  return warnings;
}
