// How short of memory the machine is, from one sample. Hysteresis and actions live in memory-guard.ts.

import type { PsiReading } from './memory-sample.js';

export type MemoryLevel = 'ok' | 'low' | 'critical';

/** The subset of the `[memory]` config this file reads; key names match the TOML file. */
export interface MemoryLevelConfig {
  min_available_bytes: number;
  critical_threshold_bytes: number;
  /** Percent; null = PSI is not used. */
  psi_some_avg10: number | null;
}

const SEVERITY: Record<MemoryLevel, number> = { ok: 0, low: 1, critical: 2 };

/**
 * critical: availableBytes < critical_threshold_bytes.
 * low: availableBytes < min_available_bytes, or PSI `some avg10` >= psi_some_avg10.
 * ok: otherwise. A value exactly at a byte threshold is on the safe side; PSI exactly at its
 * threshold counts as pressure. PSI never makes the level critical: it says the system stalls,
 * not that it is about to run out.
 */
export function classifyMemoryLevel(
  reading: { availableBytes: number; psi: PsiReading | null },
  config: MemoryLevelConfig,
): MemoryLevel {
  if (reading.availableBytes < config.critical_threshold_bytes) return 'critical';
  if (reading.availableBytes < config.min_available_bytes) return 'low';
  if (
    config.psi_some_avg10 !== null &&
    reading.psi !== null &&
    reading.psi.someAvg10 >= config.psi_some_avg10
  ) {
    return 'low';
  }
  return 'ok';
}

export function isAtLeast(level: MemoryLevel, floor: MemoryLevel): boolean {
  return SEVERITY[level] >= SEVERITY[floor];
}

/** The less severe of two levels: what two consecutive readings agree on. */
export function lesserMemoryLevel(a: MemoryLevel, b: MemoryLevel): MemoryLevel {
  return SEVERITY[a] <= SEVERITY[b] ? a : b;
}
