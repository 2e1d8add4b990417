// Which process the memory guard kills when memory is low.

import { compareByRssDescending } from './memory-sample.js';
import type { CandidateProcess, TreeProcess } from './memory-sample.js';

export interface MemoryVictimConfig {
  node_kill_threshold_bytes: number;
}

/**
 * The largest process whose RSS is strictly above node_kill_threshold_bytes, among the worker tree
 * (minus the worker main process, which is restarted rather than killed) and the extra candidates;
 * equal RSS goes to the lower pid. null when no process qualifies.
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
    if (candidate.rssBytes <= config.node_kill_threshold_bytes) continue;
    if (victim === null || compareByRssDescending(candidate, victim) < 0) victim = candidate;
  }
  if (victim === null) return null;
  // A plain copy, so an action does not carry isWorkerMain or whatever else the adapter attached.
  return { pid: victim.pid, comm: victim.comm, rssBytes: victim.rssBytes };
}
