// Cgroup v2 leftovers of test daemons. Test daemons run as root in the test runner's cgroup, so
// each makes a private sub-directory there (src/os/worker-cgroups.ts); one the test ended with
// SIGKILL cannot remove it. These helpers find a daemon's directory (by its pid while it runs, or
// by its pid file's hash) and remove it: cgroup.kill to what is still inside (only this test's
// processes are), then rmdir of every leaf and of the directory.
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { cgroup2MountOf, cgroupV2PathOf, ownCgroupDir } from '../../src/os/cgroup.js';
import { isPopulated, killCgroup } from '../../src/os/cgroup-leaf.js';
import { DAEMON_LEAF, privateDirPrefix } from '../../src/os/worker-cgroups.js';
import { waitFor } from './wait.js';

/** The test runner's own cgroup v2 directory, or null where there is none. */
export function testCgroupBase(): string | null {
  const place = ownCgroupDir();
  return place.ok ? place.dir : null;
}

/** Why the real cgroup tests cannot run here, or null: they need a writable cgroup v2 with cgroup.kill. */
export function realCgroupUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to write the cgroup v2 hierarchy';
  const base = testCgroupBase();
  if (base === null) return 'no cgroup v2 hierarchy';
  try {
    readFileSync(join(base, 'cgroup.procs'));
  } catch {
    return `cannot read ${base}/cgroup.procs`;
  }
  return null;
}

/** The cgroup v2 directory `pid` is in now, or null (gone, or no v2 line). Assumes the mount shows `/`. */
export function cgroupOfPid(pid: number): string | null {
  try {
    const path = cgroupV2PathOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    const mount = cgroup2MountOf(readFileSync('/proc/self/mountinfo', 'utf8'));
    // The root cgroup is `/`: the mount point itself, without a trailing slash.
    return path === null || mount === null ? null : path === '/' ? mount.mountPoint : join(mount.mountPoint, path);
  } catch {
    return null;
  }
}

/** The private directory of a running daemon (the parent of its `daemon` leaf), or null. */
export function privateDirOfDaemon(pid: number): string | null {
  const leaf = cgroupOfPid(pid);
  if (leaf === null || basename(leaf) !== DAEMON_LEAF) return null;
  const dir = dirname(leaf);
  return /^autopilotd-/.test(basename(dir)) ? dir : null;
}

/** Every private directory a daemon with this pid file made in the test runner's cgroup. */
export function privateDirsOf(pidFile: string): string[] {
  const base = testCgroupBase();
  if (base === null) return [];
  const prefix = privateDirPrefix(pidFile);
  return subdirs(base).filter((name) => name.startsWith(prefix)).map((name) => join(base, name));
}

/** privateDirsOf, only those whose creator (the pid and start time in the name) no longer runs. */
export function deadPrivateDirsOf(pidFile: string): string[] {
  return privateDirsOf(pidFile).filter((dir) => {
    const [pid, ticks] = basename(dir).split('-').slice(-2);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[19] !== ticks || fields[0] === 'Z';
    } catch {
      return true;
    }
  });
}

/** Kills what is left in `dir` (a test daemon's private directory) and removes it. */
export async function removeCgroupDir(dir: string): Promise<void> {
  for (const leaf of subdirs(dir).map((name) => join(dir, name))) {
    if (isPopulated(leaf)) {
      killCgroup(leaf);
      await waitFor(() => `${leaf} to empty after cgroup.kill`, () => !isPopulated(leaf), 10_000);
    }
    rmdirIfThere(leaf);
  }
  rmdirIfThere(dir);
}

/** removeCgroupDir for every directory of this pid file's dead daemons. */
export async function removeCgroupsOf(pidFile: string): Promise<void> {
  for (const dir of deadPrivateDirsOf(pidFile)) await removeCgroupDir(dir);
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

function rmdirIfThere(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
