// What one poll of the memory guard sees. The OS adapter (src/os/) fills it in; the policy only reads
// it. Time is the sample's atMs, taken from a monotonic clock by the daemon.

/** /proc/pressure/memory, avg10 fields, in percent (0-100). */
export interface PsiReading {
  someAvg10: number;
  fullAvg10: number;
}

/** A process of the worker tree (the worker main process and everything carrying its marker). */
export interface TreeProcess {
  pid: number;
  comm: string;
  rssBytes: number;
  /** Swapped out (VmSwap), not part of rssBytes; 0 when the kernel shows none. */
  swapBytes: number;
  /** The worker main process: restarted by the supervisor, never killed by the guard. */
  isWorkerMain: boolean;
}

/**
 * A same-UID process outside the tree whose name is in hog_names (only when hog_scope = "user").
 * The adapter has already filtered by UID and left out protected pids.
 */
export interface CandidateProcess {
  pid: number;
  comm: string;
  rssBytes: number;
  swapBytes: number;
}

export interface MemorySample {
  atMs: number;
  availableBytes: number;
  totalBytes: number;
  /** null when the kernel has no PSI (CONFIG_PSI off, or psi=0 on the command line). */
  psi: PsiReading | null;
  tree: readonly TreeProcess[];
  extraCandidates: readonly CandidateProcess[];
  /**
   * The tree figure from a source that counts the tree whole (such as a cgroup's memory.current +
   * memory.swap.current), when the adapter has one; absent: the tree's RSS + swap summed over its
   * processes. See treeMemoryBytes.
   */
  treeBytes?: number | null;
}

/** What one process holds: RSS + swap. Its size for the per-process threshold and the victim order. */
export function processMemoryBytes(proc: { rssBytes: number; swapBytes: number }): number {
  return proc.rssBytes + proc.swapBytes;
}

/**
 * The tree figure compared with worker_max_bytes: the sample's treeBytes when the adapter supplied
 * one, else RSS + swap over the tree. Swap counts because a leak under memory pressure moves to
 * swap: RSS alone stays under the limit while the tree keeps growing.
 */
export function treeMemoryBytes(sample: { tree: readonly { rssBytes: number; swapBytes: number }[]; treeBytes?: number | null }): number {
  return sample.treeBytes ?? treeRssBytes(sample.tree) + treeSwapBytes(sample.tree);
}

export function treeRssBytes(tree: readonly { rssBytes: number }[]): number {
  let totalBytes = 0;
  for (const proc of tree) totalBytes += proc.rssBytes;
  return totalBytes;
}

export function treeSwapBytes(tree: readonly { swapBytes: number }[]): number {
  let totalBytes = 0;
  for (const proc of tree) totalBytes += proc.swapBytes;
  return totalBytes;
}

type Sized = { pid: number; rssBytes: number; swapBytes: number };

/**
 * Largest RSS + swap first; equal sizes go to the lower pid, so the order never depends on input
 * order (a split of the same size between RSS and swap does not matter).
 */
export function compareByMemoryDescending(a: Sized, b: Sized): number {
  return processMemoryBytes(b) - processMemoryBytes(a) || a.pid - b.pid;
}

/** The n processes with the largest RSS + swap, largest first (for `status`): the victim order. */
export function topProcesses<T extends Sized>(
  tree: readonly T[],
  n = 3,
): T[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`topProcesses: n must be a non-negative integer, got ${n}`);
  }
  return [...tree].sort(compareByMemoryDescending).slice(0, n);
}
