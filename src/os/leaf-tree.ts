// The worker tree as its cgroup leaf shows it: every process the kernel keeps in the leaf (and in
// any cgroup a member made below it). Exact, and O(tree): no /proc scan, no marker, no ancestry.
// A process cannot leave the leaf unless it may write another cgroup's cgroup.procs (root, or a
// delegated user moving it within the delegation); zombies are not listed (they left at exit).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupProcs, isPopulated, killCgroup } from './cgroup-leaf.js';
import type { ProcessInfo, ProcTable } from './proc-table.js';
import type { TreeIdentity } from './process-tree.js';

export interface LeafLook {
  /** Live processes of identity.uid in the leaf: never a protected pid. */
  members: ProcessInfo[];
  /** Live processes of another uid in the leaf (a setuid program): never members, never killed. */
  foreign: ProcessInfo[];
  /** A protected pid (the daemon, an ancestor) is in the leaf: cgroup.kill would hit it. */
  protectedInside: boolean;
  /** cgroup.events `populated`: false once no live process is left in the leaf or below it. */
  populated: boolean;
}

/**
 * Each process's uid, kept for its life (pid and start time) as findTree keeps it: a sample of a
 * 200-process tree then reads 200 stat files, not 400 files. Whoever signals reads it again (a
 * setuid exec changes it). Per table, so a test's fake /proc never shares it; pruned at each look.
 */
const uidsByTable = new WeakMap<ProcTable, Map<number, { startTimeTicks: number; uid: number }>>();

/** `fresh`: read every uid again (before cgroup.kill: a member may have called setuid since). */
export function lookAtLeaf(table: ProcTable, leaf: string, identity: TreeIdentity, fresh = false): LeafLook {
  const look: LeafLook = { members: [], foreign: [], protectedInside: false, populated: isPopulated(leaf) };
  if (!look.populated) return look;
  const known = uidsByTable.get(table) ?? new Map<number, { startTimeTicks: number; uid: number }>();
  const seen = new Map<number, { startTimeTicks: number; uid: number }>();
  for (const pid of leafPids(leaf)) {
    if (identity.protectedPids.has(pid)) {
      look.protectedInside = true;
      continue;
    }
    const p = table.read(pid);
    if (p === null || p.state === 'Z' || p.state === 'X') continue;
    const cached = known.get(pid);
    const uid = !fresh && cached !== undefined && cached.startTimeTicks === p.startTimeTicks ? cached.uid : table.uidOf(pid);
    if (uid === null) continue;
    seen.set(pid, { startTimeTicks: p.startTimeTicks, uid });
    (uid === identity.uid ? look.members : look.foreign).push(p);
  }
  uidsByTable.set(table, seen);
  return look;
}

/**
 * cgroup.kill: SIGKILL to everything in the leaf, by the kernel, reaching processes no other rule
 * sees (a descendant that left group, session and parent chain, with its environment cleared).
 * Only when the leaf holds nothing but members: false (nothing sent) when the daemon or another
 * uid's process is in it, and the caller kills the members one by one.
 */
export function killLeaf(table: ProcTable, leaf: string, identity: TreeIdentity): boolean {
  const look = lookAtLeaf(table, leaf, identity, true);
  if (look.protectedInside || look.foreign.length > 0) return false;
  if (!look.populated) return true;
  killCgroup(leaf);
  return true;
}

/** The pids in the leaf and in the cgroups below it (a member may make some, as root or delegated). */
function leafPids(leaf: string): number[] {
  const pids = cgroupProcs(leaf);
  let entries;
  try {
    entries = readdirSync(leaf, { withFileTypes: true });
  } catch {
    return pids; // gone meanwhile: nothing below it either
  }
  for (const e of entries) if (e.isDirectory()) pids.push(...leafPids(join(leaf, e.name)));
  return pids;
}
