// The one human line the daemon gives its service manager as STATUS= (sd_notify, issue #16):
// `systemctl status` and `systemctl show -p StatusText` show it. Worker first, then the tree and
// the system's memory, and the memory or health action that caused this line when there was one.

import type { WorkerState } from './worker-state.js';

export interface ServiceStatusInput {
  worker: {
    state: WorkerState;
    pid: number | null;
    generation: number;
    consecutiveFailures: number;
    /** Until the scheduled start (backoff, failed, held), or null. */
    retryInMs: number | null;
  };
  /** The memory guard's latest figures; null before its first sample. */
  memory: {
    level: string;
    availableBytes: number | null;
    treeRssBytes: number | null;
    /** Not part of treeRssBytes; 0 (no swap, as on most machines) and null are not shown. */
    treeSwapBytes: number | null;
    treeProcesses: number | null;
  } | null;
  /** What the memory guard or a health check just did, in words (describeAction), or null. */
  action: string | null;
}

/**
 * e.g. `worker running, pid 4121, gen 3, tree 812 MiB in 14 procs, 5.1 GiB available`, with
 * `tree 812 MiB (+1.2 GiB swap) in 14 procs` when part of the tree is swapped out.
 */
export function formatServiceStatus(s: ServiceStatusInput): string {
  const w = s.worker;
  const parts = [`worker ${w.state}`];
  if (w.pid !== null) parts.push(`pid ${w.pid}`);
  if (w.generation > 0) parts.push(`gen ${w.generation}`);
  if ((w.state === 'backoff' || w.state === 'failed') && w.consecutiveFailures > 0) {
    parts.push(`${w.consecutiveFailures} ${w.consecutiveFailures === 1 ? 'failure' : 'failures'} in a row`);
  }
  if (w.retryInMs !== null && (w.state === 'backoff' || w.state === 'failed')) parts.push(`retry in ${formatSeconds(w.retryInMs)}`);
  if (w.retryInMs !== null && w.state === 'held') parts.push(`next start in ${formatSeconds(w.retryInMs)}`);
  const m = s.memory;
  if (m !== null) {
    // Only while a tree can exist: after it, the guard's last look still counts the old one.
    const treeLives = w.state === 'starting' || w.state === 'running' || w.state === 'stopping';
    if (treeLives && m.treeRssBytes !== null && m.treeProcesses !== null && m.treeProcesses > 0) {
      parts.push(`tree ${withSwap(m.treeRssBytes, m.treeSwapBytes)} in ${m.treeProcesses} ${m.treeProcesses === 1 ? 'proc' : 'procs'}`);
    }
    if (m.availableBytes !== null) parts.push(`${formatSize(m.availableBytes)} available`);
    if (m.level !== 'ok') parts.push(`memory ${m.level}`);
  }
  const line = parts.join(', ');
  return s.action === null ? line : `${s.action}; ${line}`;
}

export type ServiceAction =
  | { kind: 'memory-kill'; reason: string; comm: string; pid: number; rssBytes: number; swapBytes: number }
  | { kind: 'memory-kill-escalated'; comm: string; pid: number }
  | { kind: 'memory-restart'; reason: string; treeRssBytes: number; treeSwapBytes: number; limitBytes: number | null }
  | { kind: 'restart'; cause: string };

/** A memory or health action in a few words, to lead the STATUS line it caused. */
export function describeAction(a: ServiceAction): string {
  switch (a.kind) {
    case 'memory-kill': return `memory ${a.reason}: SIGTERM to ${a.comm} pid ${a.pid} (${formatSize(a.rssBytes)}${swapText(a.swapBytes)})`;
    case 'memory-kill-escalated': return `memory: SIGKILL to ${a.comm} pid ${a.pid}`;
    // The figures of the decision itself: by the time the line is sent the tree may be going.
    case 'memory-restart': {
      const tree = `tree ${formatSize(a.treeRssBytes)}${swapText(a.treeSwapBytes)}`;
      const figures = a.limitBytes === null ? tree : `${tree} over ${formatSize(a.limitBytes)}`;
      return `memory ${a.reason === 'tree_limit' ? 'tree limit' : a.reason} (${figures}): restarting the worker`;
    }
    case 'restart': return `${a.cause} restart`;
  }
}

/** `812 MiB`, or `812 MiB (+1.2 GiB swap)` when some is swapped out. */
function withSwap(rssBytes: number, swapBytes: number | null): string {
  return swapBytes === null || swapBytes <= 0 ? formatSize(rssBytes) : `${formatSize(rssBytes)} (+${formatSize(swapBytes)} swap)`;
}

/** ` +700 MiB swap`, or nothing when nothing is swapped out. */
function swapText(swapBytes: number): string {
  return swapBytes > 0 ? ` +${formatSize(swapBytes)} swap` : '';
}

/** Binary units, one decimal below 10: `812 MiB`, `5.1 GiB`, `64 KiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 || v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

function formatSeconds(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}
