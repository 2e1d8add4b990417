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
   * The whole tree's memory as the kernel charges it, when its cgroup leaf has the memory
   * controller (memory.current + memory.swap.current): then the figure the limit is compared
   * with. Absent or null: the sum of the processes' own figures (treeRssBytes).
   */
  treeBytes?: number | null;
}

export function treeRssBytes(tree: readonly { rssBytes: number }[]): number {
  let totalBytes = 0;
  for (const proc of tree) totalBytes += proc.rssBytes;
  return totalBytes;
}

/** The tree's figure the limit is compared with: the kernel's, when the sample has it. */
export function treeFigureBytes(sample: Pick<MemorySample, 'tree' | 'treeBytes'>): number {
  return sample.treeBytes ?? treeRssBytes(sample.tree);
}

/** Largest RSS first; equal RSS goes to the lower pid, so the order never depends on input order. */
export function compareByRssDescending(
  a: { pid: number; rssBytes: number },
  b: { pid: number; rssBytes: number },
): number {
  return b.rssBytes - a.rssBytes || a.pid - b.pid;
}

/** The n processes with the largest RSS, largest first (for `status` and log lines). */
export function topProcesses<T extends { pid: number; rssBytes: number }>(
  tree: readonly T[],
  n = 3,
): T[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`topProcesses: n must be a non-negative integer, got ${n}`);
  }
  return [...tree].sort(compareByRssDescending).slice(0, n);
}
