// PM2 beside autopilotd in the benchmarks. PM2 is not a dependency: on first use it is installed
// into bench/.peers (git-ignored). Its daemon always gets a temp PM2_HOME, so a user's own PM2 is
// never touched, and it is stopped with `pm2 kill` plus a check by PID.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PEERS = fileURLToPath(new URL('.peers', import.meta.url));
export const PM2 = join(PEERS, 'node_modules/.bin/pm2');

export function ensurePm2() {
  if (existsSync(PM2)) return;
  console.error('installing pm2@5 into bench/.peers (first use only)...');
  execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', PEERS, 'pm2@5'], { stdio: 'inherit' });
}

/** The caller's environment without anything that steers either daemon. */
export function neutralEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTOPILOTD_') && !k.startsWith('PM2_')));
}

/** Starts PM2's daemon in `pm2Home` supervising `sleep 1000`; returns its daemon's pid and env. */
export function startPm2(pm2Home) {
  ensurePm2();
  const env = { ...neutralEnv(), PM2_HOME: pm2Home };
  const r = spawnSync(PM2, ['start', 'sleep', '--name', 'bench-sleep', '--interpreter', 'none', '--', '1000'], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pm2 start exited ${r.status}\n${r.stdout}${r.stderr}`);
  return { pid: Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8').trim()), env };
}

export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !'ZX'.includes(stat[stat.lastIndexOf(')') + 2]);
  } catch {
    return false;
  }
}

/** `pm2 kill`, then SIGKILL by PID if its daemon is still there. */
export async function stopPm2(pm2, pm2Home) {
  if (!existsSync(pm2Home)) return;
  const killed = spawnSync(PM2, ['kill'], { env: pm2?.env ?? { ...neutralEnv(), PM2_HOME: pm2Home }, encoding: 'utf8' });
  if (killed.status !== 0) console.error(`pm2 kill exited ${killed.status}: ${killed.stderr}`);
  if (pm2 === null) return;
  const deadline = Date.now() + 5000;
  while (alive(pm2.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (alive(pm2.pid)) process.kill(pm2.pid, 'SIGKILL');
}
