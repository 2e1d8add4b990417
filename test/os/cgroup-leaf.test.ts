// One cgroup directory's files. Membership, `populated`, cgroup.kill and moving a process are
// tested on the real cgroup v2 hierarchy (as root). The memory controller's files cannot be
// produced here (a hybrid layout: memory is on v1, so v2 has no controllers), so memory.current,
// memory.swap.current, memory.events and memory.max are tested against a fake cgroupfs directory:
// a temp dir holding files written as the kernel writes them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  cgroupMemoryBytes, cgroupProcs, hasMemoryMax, isPopulated, killCgroup, moveProcess, oomKillCount, setMemoryMax,
} from '../../src/os/cgroup-leaf.js';
import { realCgroupUnavailable, testCgroupBase } from '../helpers/cgroup.js';
import { waitFor } from '../helpers/wait.js';

function fakeCgroup(t: { after(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'apd-fakecg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('fake cgroupfs: the tree figure is memory.current plus memory.swap.current', (t) => {
  const dir = fakeCgroup(t, { 'memory.current': '7516192768\n', 'memory.swap.current': '1073741824\n' });
  assert.equal(cgroupMemoryBytes(dir), 8 * 1024 ** 3);
});

test('fake cgroupfs: without swap accounting the figure is memory.current; without the controller there is none', (t) => {
  assert.equal(cgroupMemoryBytes(fakeCgroup(t, { 'memory.current': '4096\n' })), 4096);
  assert.equal(cgroupMemoryBytes(fakeCgroup(t, { 'cgroup.procs': '' })), null);
});

test('fake cgroupfs: oom_kill is read from memory.events; none without the file', (t) => {
  const events = 'low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n';
  assert.equal(oomKillCount(fakeCgroup(t, { 'memory.events': events })), 2);
  assert.equal(oomKillCount(fakeCgroup(t, {})), null);
});

test('fake cgroupfs: memory.max is written as whole bytes, only where the file exists', (t) => {
  const dir = fakeCgroup(t, { 'memory.max': 'max\n' });
  assert.ok(hasMemoryMax(dir));
  setMemoryMax(dir, 1.5 * 1024 ** 3 + 0.5);
  assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), String(1.5 * 1024 ** 3));
  const none = fakeCgroup(t, {});
  assert.ok(!hasMemoryMax(none));
  assert.throws(() => setMemoryMax(none, 1), /ENOENT/, 'a missing file is an error, never created');
});

test('real cgroup v2: procs, populated, cgroup.kill, and a removed cgroup reads as empty', async (t) => {
  const why = realCgroupUnavailable();
  if (why !== null) return t.skip(why);
  const dir = join(testCgroupBase()!, `apdtest-leaf-${process.pid}`);
  mkdirSync(dir);
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    try {
      rmdirSync(dir);
    } catch {
      // removed by the test
    }
  });
  await once(child, 'spawn');
  assert.equal(isPopulated(dir), false);
  assert.deepEqual(cgroupProcs(dir), []);
  moveProcess(dir, child.pid!);
  assert.deepEqual(cgroupProcs(dir), [child.pid]);
  assert.equal(isPopulated(dir), true);
  const exited = once(child, 'exit');
  killCgroup(dir);
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  await waitFor('populated 0 after cgroup.kill', () => !isPopulated(dir));
  assert.deepEqual(cgroupProcs(dir), []);
  rmdirSync(dir);
  assert.equal(isPopulated(dir), false, 'a gone cgroup holds nothing');
  assert.deepEqual(cgroupProcs(dir), []);
});
