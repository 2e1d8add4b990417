// Finding the daemon's own cgroup v2 directory: parsing /proc/self/cgroup and mountinfo (texts
// as the kernel writes them), a fake /proc/self for the layouts this machine does not have, and
// the real one (this machine: hybrid, v2 at /sys/fs/cgroup/unified).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cgroup2MountOf, cgroupV2PathOf, ownCgroupDir } from '../../src/os/cgroup.js';

const HYBRID_MOUNTINFO = [
  '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '',
].join('\n');

test('the 0:: line names the cgroup v2 path; a v1-only system has none', () => {
  assert.equal(cgroupV2PathOf('9:name=systemd:/init.scope\n4:memory:/x\n0::/init.scope\n'), '/init.scope');
  assert.equal(cgroupV2PathOf('0::/\n'), '/');
  assert.equal(cgroupV2PathOf('4:memory:/x\n1:cpu:/\n'), null);
});

test('the cgroup2 mount is found among others, with optional fields and escaped spaces', () => {
  assert.deepEqual(cgroup2MountOf(HYBRID_MOUNTINFO), { mountPoint: '/sys/fs/cgroup/unified', root: '/' });
  const unified = '25 20 0:22 / /sys/fs/cgroup rw,nosuid shared:9 master:1 - cgroup2 cgroup2 rw,nsdelegate\n';
  assert.deepEqual(cgroup2MountOf(unified), { mountPoint: '/sys/fs/cgroup', root: '/' });
  assert.deepEqual(cgroup2MountOf('41 30 0:37 /sub /mnt/cg\\040two rw - cgroup2 none rw\n'), { mountPoint: '/mnt/cg two', root: '/sub' });
  assert.equal(cgroup2MountOf('34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n'), null);
});

test('a fake /proc/self: the directory is the mount point joined with the path, or why there is none', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'apd-cg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cg = join(dir, 'cg');
  mkdirSync(join(cg, 'user.slice', 'app.service'), { recursive: true });
  const self = join(dir, 'self');
  mkdirSync(self);
  const write = (cgroup: string, mountinfo: string): void => {
    writeFileSync(join(self, 'cgroup'), cgroup);
    writeFileSync(join(self, 'mountinfo'), mountinfo);
  };
  write('0::/user.slice/app.service\n', `40 30 0:37 / ${cg} rw - cgroup2 cgroup2 rw\n`);
  assert.deepEqual(ownCgroupDir(self), { ok: true, dir: join(cg, 'user.slice', 'app.service') });
  // A mount of a sub-tree: the path is made relative to the mount's root.
  write('0::/user.slice/app.service\n', `40 30 0:37 /user.slice ${cg} rw - cgroup2 cgroup2 rw\n`);
  mkdirSync(join(cg, 'app.service'));
  assert.deepEqual(ownCgroupDir(self), { ok: true, dir: join(cg, 'app.service') });
  write('0::/elsewhere\n', `40 30 0:37 /user.slice ${cg} rw - cgroup2 cgroup2 rw\n`);
  assert.match((ownCgroupDir(self) as { reason: string }).reason, /outside the cgroup2 mount/);
  write('4:memory:/x\n', HYBRID_MOUNTINFO);
  assert.match((ownCgroupDir(self) as { reason: string }).reason, /no cgroup v2 \("0::"\) line/);
  write('0::/x\n', '34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n');
  assert.match((ownCgroupDir(self) as { reason: string }).reason, /no cgroup2 file system is mounted/);
});

test('the real one: this process is listed in the cgroup.procs of the directory found', (t) => {
  const place = ownCgroupDir();
  if (!place.ok) return t.skip(`no cgroup v2 here: ${place.reason}`);
  const pids = readFileSync(join(place.dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
  assert.ok(pids.includes(process.pid), `${place.dir}/cgroup.procs lists ${pids.join(',')}`);
});
