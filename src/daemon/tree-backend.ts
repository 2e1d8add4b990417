// Chooses how the worker tree is found and stopped: a cgroup v2 leaf per generation (exact, from
// the kernel) or the /proc rules (group, session, ancestry, marker). `[cgroup] mode` decides:
// `off` never tries, `auto` falls back to /proc (logged once, with why), `required` refuses to
// start. Runs once the instance lock is held, so a predecessor's leftover leaves are ours to clear
// (clearLeftovers, after the stop of the orphaned tree by its marker: what that misses is here).
import { formatProblem, type ConfigProblem } from '../config/errors.js';
import type { LoadedConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { ownCgroupDir } from '../os/cgroup.js';
import { isPopulated } from '../os/cgroup-leaf.js';
import { lookAtLeaf } from '../os/leaf-tree.js';
import type { ProcTable } from '../os/proc-table.js';
import type { TreeIdentity } from '../os/process-tree.js';
import { stopTree } from '../os/tree-stop.js';
import { CgroupUnavailable, WorkerCgroups, type Leftover } from '../os/worker-cgroups.js';

/** `mode = "required"` and no writable cgroup v2: the start fails with exit 78 (a configuration error). */
export class CgroupRequiredError extends Error {
  readonly code = 'cgroup_unavailable';
}

export interface TreeBackendDeps {
  loaded: LoadedConfig;
  table: ProcTable;
  uid: number;
  protectedPids: () => ReadonlySet<number>;
  logger: Logger;
  startTicks: number;
}

/** The worker cgroups, or null for the /proc rules. Throws CgroupRequiredError as above. */
export async function openTreeBackend(deps: TreeBackendDeps): Promise<WorkerCgroups | null> {
  const { loaded, logger } = deps;
  const mode = loaded.config.cgroup.mode;
  if (mode === 'off') {
    logger.emit({ kind: 'tree-backend', backend: 'proc', detail: '[cgroup] mode = "off"' });
    return null;
  }
  const cgroups = tryOpen(deps);
  if (typeof cgroups === 'string') {
    if (mode === 'required') throw new CgroupRequiredError(requiredProblem(loaded, cgroups));
    logger.emit({ kind: 'tree-backend', backend: 'proc', detail: `no writable cgroup v2: ${cgroups}` });
    return null;
  }
  const where = cgroups.privateHome ? 'a private sub-directory of our shared cgroup' : 'our own cgroup (delegated)';
  logger.emit({ kind: 'tree-backend', backend: 'cgroup', detail: `${cgroups.home}, ${where}, memory controller ${cgroups.memory ? 'on' : 'off'}` });
  return cgroups;
}

/** The cgroups, or why there are none. */
function tryOpen(deps: TreeBackendDeps): WorkerCgroups | string {
  const place = ownCgroupDir();
  if (!place.ok) return place.reason;
  try {
    return WorkerCgroups.open({
      base: place.dir,
      instanceKey: deps.loaded.config.pid_file,
      pid: process.pid,
      startTicks: deps.startTicks,
      isRunning: (pid, ticks) => {
        const p = deps.table.read(pid);
        return p !== null && p.startTimeTicks === ticks && p.state !== 'Z' && p.state !== 'X';
      },
      onProblem: (message) => deps.logger.emit({ kind: 'cgroup-problem', message }),
    });
  } catch (err) {
    if (err instanceof CgroupUnavailable) return err.message;
    throw err;
  }
}

/**
 * A predecessor of this instance killed with SIGKILL may have left leaves with processes in them:
 * its orphaned tree, stopped as any tree (SIGTERM, grace, cgroup.kill) before our worker spawns.
 * Then the empty leftovers go, ours and (empty ones only) those of other instances' dead daemons.
 */
export async function clearLeftovers(cgroups: WorkerCgroups, deps: TreeBackendDeps): Promise<void> {
  for (const leftover of cgroups.leftovers()) {
    await stopLeftover(leftover, deps);
    cgroups.removeLeftover(leftover);
  }
  for (const dir of cgroups.removeEmptyOfOthers()) deps.logger.emit({ kind: 'cgroup-leftover-removed', dir });
}

async function stopLeftover(leftover: Leftover, deps: TreeBackendDeps): Promise<void> {
  // The leaf is the tree: the instance id and group play no part in a stop by leaf.
  const identity: TreeIdentity = { root: null, pgid: null, instanceId: '', uid: deps.uid, protectedPids: deps.protectedPids() };
  for (const leaf of leftover.leaves) {
    if (!isPopulated(leaf)) continue;
    const pids = lookAtLeaf(deps.table, leaf, identity).members.map((p) => p.pid);
    deps.logger.emit({ kind: 'cgroup-leftover-found', dir: leaf, pids });
    await stopTree({ table: deps.table, identity, graceMs: deps.loaded.config.worker.stop_timeout_ms, cgroup: leaf });
  }
}

/** The start's one error line: where `mode = "required"` was set, and why no cgroup could be had. */
function requiredProblem(loaded: LoadedConfig, reason: string): string {
  const source = loaded.sources['cgroup.mode'];
  const problem: ConfigProblem = {
    source: 'default', key: 'cgroup.mode', expected: '',
    reason: `"required", but no writable cgroup v2 is available: ${reason}`,
    hint: 'run the daemon where it may write its cgroup (a systemd service with Delegate=yes, or root), or set cgroup.mode = "auto"',
  };
  if (source?.kind === 'file') Object.assign(problem, { source: 'file', file: source.path, line: source.line });
  else if (source?.kind === 'env') Object.assign(problem, { source: 'env', envName: source.name });
  else if (source?.kind === 'flag') Object.assign(problem, { source: 'flag', flag: source.name });
  return formatProblem(problem);
}
