// Reads and writes the interface files of one cgroup v2 directory (cgroup-v2.rst). Each function
// takes the directory, so a test can point it at a fake cgroupfs (a temp dir holding such files)
// where the kernel cannot show them, e.g. the memory controller's files on a hybrid layout.
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The pids in the cgroup itself (not its children). Zombies are not listed: they left at exit. */
export function cgroupProcs(dir: string): number[] {
  const text = readOrNull(join(dir, 'cgroup.procs'));
  if (text === null) return [];
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    if (line !== '') pids.push(Number(line));
  }
  return pids;
}

/**
 * Whether any live process is in the cgroup or below it (`populated` of cgroup.events). A directory
 * that is gone holds nothing: false.
 */
export function isPopulated(dir: string): boolean {
  const value = keyedValue(readOrNull(join(dir, 'cgroup.events')), 'populated');
  return value !== null && value !== 0;
}

/** SIGKILL to every process in the cgroup and below it, by the kernel, at once (Linux 5.14+). */
export function killCgroup(dir: string): void {
  writeFile(join(dir, 'cgroup.kill'), '1');
}

/** Moves the process `pid` (all its threads) into the cgroup. */
export function moveProcess(dir: string, pid: number): void {
  writeFile(join(dir, 'cgroup.procs'), String(pid));
}

export function hasCgroupKill(dir: string): boolean {
  return existsSync(join(dir, 'cgroup.kill'));
}

/** The controllers available in the cgroup (cgroup.controllers). */
export function availableControllers(dir: string): string[] {
  return (readOrNull(join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter((c) => c !== '');
}

/** Enables `controller` for the cgroup's children (cgroup.subtree_control). */
export function enableForChildren(dir: string, controller: string): void {
  writeFile(join(dir, 'cgroup.subtree_control'), `+${controller}`);
}

/**
 * The memory the kernel charges to the cgroup: memory.current plus memory.swap.current (0 when
 * there is no swap accounting). null without the memory controller (no memory.current).
 */
export function cgroupMemoryBytes(dir: string): number | null {
  const current = readNumber(join(dir, 'memory.current'));
  if (current === null) return null;
  return current + (readNumber(join(dir, 'memory.swap.current')) ?? 0);
}

/** How many processes the OOM killer killed in the cgroup (memory.events `oom_kill`); null without the file. */
export function oomKillCount(dir: string): number | null {
  return keyedValue(readOrNull(join(dir, 'memory.events')), 'oom_kill');
}

/** Whether the cgroup has the memory controller's limit file (memory.max). */
export function hasMemoryMax(dir: string): boolean {
  return existsSync(join(dir, 'memory.max'));
}

export function setMemoryMax(dir: string, bytes: number): void {
  writeFile(join(dir, 'memory.max'), String(Math.floor(bytes)));
}

/** A value of a flat keyed file ("key value" lines), or null when the file or the key is missing. */
function keyedValue(text: string | null, key: string): number | null {
  if (text === null) return null;
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0 && line.slice(0, space) === key) {
      const value = Number(line.slice(space + 1));
      return Number.isFinite(value) ? value : null;
    }
  }
  return null;
}

function readNumber(path: string): number | null {
  const text = readOrNull(path);
  if (text === null) return null;
  const value = Number(text.trim());
  return Number.isFinite(value) ? value : null;
}

/** The file's text, or null when it (or its cgroup) is gone. */
function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV') return null;
    throw err;
  }
}

/**
 * One write(2): a cgroupfs file takes its value from one write, and reports failure from it.
 * Write-only, never created: cgroup.kill cannot be opened for reading, and a file that is missing
 * (a cgroup that is gone, a controller that is off) is an error, not a new file.
 */
function writeFile(path: string, text: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
