// Which process the memory guard kills when memory is low.

import { compareByMemoryDescending, processMemoryBytes } from './memory-sample.js';
import type { CandidateProcess, TreeProcess } from './memory-sample.js';

export interface MemoryVictimConfig {
  node_kill_threshold_bytes: number;
}

/**
 * The largest process whose RSS + swap is strictly above node_kill_threshold_bytes, among the worker
 * tree (minus the worker main process, which is restarted rather than killed) and the extra
 * candidates; equal sizes go to the lower pid. null when no process qualifies. Swap counts: a
 * process mostly swapped out under pressure is the one that thrashes the machine, and RSS alone
 * would not even make it a candidate.
 */
export function pickVictim(
  tree: readonly TreeProcess[],
  extraCandidates: readonly CandidateProcess[],
  config: MemoryVictimConfig,
): CandidateProcess | null {
  const candidates: CandidateProcess[] = [
    ...tree.filter((proc) => !proc.isWorkerMain),
    ...extraCandidates,
  ];
  let victim: CandidateProcess | null = null;
  for (const candidate of candidates) {
    if (processMemoryBytes(candidate) <= config.node_kill_threshold_bytes) continue;
    if (victim === null || compareByMemoryDescending(candidate, victim) < 0) victim = candidate;
  }
  if (victim === null) return null;
  // A plain copy, so an action does not carry isWorkerMain or whatever else the adapter attached.
  return { pid: victim.pid, comm: victim.comm, rssBytes: victim.rssBytes, swapBytes: victim.swapBytes };
}
