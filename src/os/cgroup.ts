// Where the daemon's own cgroup v2 directory is: the `0::` line of /proc/self/cgroup names it
// relative to the root of the cgroup2 mount that /proc/self/mountinfo lists. Nothing is
// hard-coded: a hybrid layout mounts v2 at /sys/fs/cgroup/unified, a unified one at /sys/fs/cgroup,
// and a cgroup namespace shows its own root as `/`.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type CgroupPlace = { ok: true; dir: string } | { ok: false; reason: string };

/** The path on the `0::` line (cgroup v2), or null when there is none (a v1-only system). */
export function cgroupV2PathOf(procSelfCgroup: string): string | null {
  for (const line of procSelfCgroup.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3);
  }
  return null;
}

export interface Cgroup2Mount {
  mountPoint: string;
  /** The part of the hierarchy the mount shows at its mount point: `/` except for a bind mount. */
  root: string;
}

/** The first cgroup2 mount of a mountinfo text (proc(5): fields, then ` - fstype source options`). */
export function cgroup2MountOf(mountinfo: string): Cgroup2Mount | null {
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0 || line.slice(dash + 3).split(' ')[0] !== 'cgroup2') continue;
    const fields = line.slice(0, dash).split(' ');
    if (fields.length < 5) continue;
    return { root: unescapeMountField(fields[3]!), mountPoint: unescapeMountField(fields[4]!) };
  }
  return null;
}

/** mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The daemon's own cgroup v2 directory, or why there is none. `procSelf`: tests pass a fake. */
export function ownCgroupDir(procSelf = '/proc/self'): CgroupPlace {
  let cgroupText: string;
  let mountinfo: string;
  try {
    cgroupText = readFileSync(join(procSelf, 'cgroup'), 'utf8');
    mountinfo = readFileSync(join(procSelf, 'mountinfo'), 'utf8');
  } catch (err) {
    return { ok: false, reason: `cannot read ${procSelf}/cgroup or mountinfo: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const path = cgroupV2PathOf(cgroupText);
  if (path === null) return { ok: false, reason: `${procSelf}/cgroup has no cgroup v2 ("0::") line: this system has cgroup v1 only` };
  const mount = cgroup2MountOf(mountinfo);
  if (mount === null) return { ok: false, reason: 'no cgroup2 file system is mounted (none in /proc/self/mountinfo)' };
  const relative = relativeTo(mount.root, path);
  if (relative === null) return { ok: false, reason: `our cgroup ${path} is outside the cgroup2 mount at ${mount.mountPoint} (it shows ${mount.root})` };
  const dir = relative === '' ? mount.mountPoint : join(mount.mountPoint, relative);
  try {
    if (!statSync(dir).isDirectory()) return { ok: false, reason: `${dir} is not a directory` };
  } catch (err) {
    return { ok: false, reason: `our cgroup directory ${dir} cannot be looked at: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  return { ok: true, dir };
}

/** `path` below `root`, without a leading slash ('' for root itself), or null when it is not below it. */
function relativeTo(root: string, path: string): string | null {
  if (path.endsWith(' (deleted)')) return null;
  if (root === '/') return path.replace(/^\/+/, '');
  if (path === root) return '';
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : null;
}
