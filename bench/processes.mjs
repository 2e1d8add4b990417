// Process plumbing shared by the side-by-side benchmarks (idle-cpu, restart-latency): CPU of one
// process, ~1000 background sleepers, stopping by PID, and a tag in the environment of everything
// a bench starts, so that whatever outlives its stop is found by the tag and ended by PID.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { alive } from './pm2.mjs';

export { alive };

/** Ticks per second of utime/stime in /proc/<pid>/stat (USER_HZ: 100 on Linux/x86). */
const CLK_TCK = 100;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fields of /proc/<pid>/stat after the comm, so field n of proc(5) is fields[n - 3]; null if gone. */
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU used so far by `pid` itself (all its threads; not its reaped children, whose time goes to
 * cutime/cstime): `statMs` = utime + stime from /proc/<pid>/stat, 10 ms ticks; `runMs` = the
 * scheduler's on-CPU time summed over /proc/<pid>/task/<tid>/schedstat, in ns, for the precision a
 * 5 ms figure needs (threads that already exited drop out of it; idle supervisors keep theirs).
 */
export function cpuOf(pid) {
  const f = statFields(pid);
  if (f === null) return null;
  const statMs = ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  let runNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      runNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return { statMs, runMs: runNs / 1e6 };
}

export function startTimeOf(pid) {
  const f = statFields(pid);
  return f === null ? null : Number(f[19]);
}

/** Live pids carrying `NAME=value` in their environment (ours only: others' environ is unreadable). */
export function taggedPids(entry) {
  const pids = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let environ;
    try {
      environ = readFileSync(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (environ.split('\0').includes(entry) && alive(Number(name))) pids.push(Number(name));
  }
  return pids;
}

/** SIGKILL by PID whatever still carries the tag; returns how many there were (0 after a clean stop). */
export async function sweepTagged(entry) {
  let found = 0;
  for (let round = 0; round < 50; round++) {
    const left = taggedPids(entry);
    if (left.length === 0) return found;
    if (round === 0) {
      found = left.length;
      for (const pid of left) console.error(`left behind: pid ${pid} ppid ${statFields(pid)?.[1]}: ${cmdlineOf(pid)}`);
    }
    for (const pid of left) signal(pid, 'SIGKILL');
    await sleep(100);
  }
  throw new Error(`processes tagged ${entry} survive SIGKILL: ${taggedPids(entry).join(' ')}`);
}

function cmdlineOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '?';
  }
}

export function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if (err.code === 'ESRCH') return false;
    throw err;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once `pid` is gone (or a zombie). */
export async function stopByPid(pid, what, graceMs = 10_000) {
  if (pid === null || pid === undefined || !alive(pid)) return;
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(25);
  if (alive(pid)) {
    console.error(`${what} (pid ${pid}) still running ${graceMs} ms after SIGTERM: SIGKILL`);
    signal(pid, 'SIGKILL');
    while (alive(pid)) await sleep(25);
  }
}

export async function waitFor(what, condition, timeoutMs, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

function liveInGroup(pgid) {
  let n = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(name);
    if (f !== null && Number(f[2]) === pgid && !'ZX'.includes(f[0])) n++;
  }
  return n;
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * `count` extra `sleep` processes, forked by one detached sh (its own session and group). Stopped
 * by SIGKILL to each sleeper by PID, so that the sh's `wait` reaps them (init here reaps orphans
 * only now and then), then the group for anything left.
 */
export async function startSleepers(count, env) {
  const sh = spawn('/bin/sh', ['-c', `i=0; while [ $i -lt ${count} ]; do sleep 1000 & i=$((i+1)); done; wait`], { detached: true, stdio: 'ignore', env });
  const pgid = sh.pid;
  const exited = once(sh, 'exit');
  const stop = async () => {
    for (const pid of childrenOf(pgid)) signal(pid, 'SIGKILL');
    await Promise.race([exited, sleep(30_000)]);
    signal(-pgid, 'SIGKILL');
    await exited;
    await waitFor('the sleepers to die', () => liveInGroup(pgid) === 0, 30_000);
  };
  try {
    await waitFor(`${count} sleepers`, () => liveInGroup(pgid) >= count + 1, 60_000, 200);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pgid, stop };
}

/** Processes visible in /proc now. */
export function processCount() {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).length;
}

export function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/**
 * How busy the machine is with new processes (the daemon's full scans read each new PID's environ):
 * call at the start, and the returned function says how many PIDs were handed out since, per
 * second. From the last PID handed out (/proc/loadavg), allowing for one wrap past pid_max (at
 * 32768 here a busy minute can wrap).
 */
export function pidChurn() {
  const lastPid = () => Number(readFileSync('/proc/loadavg', 'utf8').trim().split(' ')[4]);
  const [pid0, t0] = [lastPid(), Date.now()];
  return () => {
    let n = lastPid() - pid0;
    if (n < 0) n += Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    return `${n} PIDs handed out on the machine in ${((Date.now() - t0) / 1000).toFixed(0)} s (${((n * 1000) / (Date.now() - t0)).toFixed(0)}/s)`;
  };
}

export function quantile(samples, q) {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
