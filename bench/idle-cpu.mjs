#!/usr/bin/env node
// Idle supervisor CPU per 20 s (#18): autopilotd with its default configuration (default polling)
// supervising `sleep 1000`, side by side in the same windows with PM2, supervisord and a private
// systemd user manager supervising the same `sleep`, and two idle `node` processes as the floor
// (plain, and with the V8 flags `autopilotd start` gives the daemon), on a machine with ~1000 extra
// `sleep` processes. CPU is the supervisor process's own (all threads; its reaped children's time
// is not counted): measured over WINDOWS windows after a warm-up, median per window, scaled to 20 s.
// Targets (#18): autopilotd <= supervisord, and <= 3 x the idle node.
// Usage: npm run build && node bench/idle-cpu.mjs
//   BENCH_IDLE_WINDOW_S (20), BENCH_IDLE_WINDOWS (5), BENCH_IDLE_WARMUP_S (10), BENCH_SLEEPERS (1000)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../dist/src/cli/daemon-node-flags.js';
import { startDetachedDaemon } from './daemon-config.mjs';
import { neutralEnv, startPm2, stopPm2 } from './pm2.mjs';
import { cpuOf, loadAverage, median, pidChurn, processCount, sleep, startSleepers, stopByPid, sweepTagged } from './processes.mjs';
import { startSupervisord } from './supervisord.mjs';
import { startUserManager } from './systemd-user.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/bin/autopilotd.cjs');
const num = (name, fallback) => Number(process.env[name] ?? fallback);
const WINDOW_S = num('BENCH_IDLE_WINDOW_S', 20);
const WINDOWS = num('BENCH_IDLE_WINDOWS', 5);
const WARMUP_S = num('BENCH_IDLE_WARMUP_S', 10);
const SLEEPERS = num('BENCH_SLEEPERS', 1000);
const TAG = `APD_BENCH_TAG=idle-cpu-${randomBytes(4).toString('hex')}`;

/** Each peer: start(dir, env) resolves with { pid, stop }. */
const PEERS = [
  { name: 'autopilotd (default config)', key: 'autopilotd', start: startAutopilotd },
  { name: 'PM2 daemon', key: 'pm2', start: startPm2Peer },
  { name: 'supervisord', key: 'supervisord', start: (dir, env) => startSupervisord(dir, ['command=/bin/sleep 1000', 'autorestart=true', 'startsecs=0'], env) },
  { name: 'systemd --user manager (Restart=always)', key: 'systemd', start: startSystemdPeer },
  { name: 'idle `node` (floor)', key: 'node', start: (dir, env) => startIdleNode([], env) },
  { name: `idle \`node ${DAEMON_NODE_FLAGS.join(' ')}\``, key: 'nodeFlags', start: (dir, env) => startIdleNode(DAEMON_NODE_FLAGS, env) },
  // Not a target: what waking at the daemon's default poll period costs Node with nothing to do.
  { name: '`node` with an empty 5 s setInterval (a poller\'s floor)', key: 'nodeTimer', start: (dir, env) => startIdleNode([], env, 5000) },
];

async function startAutopilotd(dir, env) {
  return startDetachedDaemon(dir, env, ['[worker]', 'command = ["sleep", "1000"]']);
}

async function startPm2Peer(dir, env) {
  const home = join(dir, 'pm2');
  const pm2 = startPm2(home); // its env is neutralEnv() + PM2_HOME; the tag comes in below
  return { pid: pm2.pid, stop: () => stopPm2(pm2, home) };
}

async function startSystemdPeer(dir, env) {
  const unit = ['[Unit]', 'StartLimitIntervalSec=0', '[Service]', 'ExecStart=/bin/sleep 1000', 'Restart=always', ''].join('\n');
  const tag = TAG.split('=');
  return startUserManager(dir, { 'bench-sleep.service': unit }, { [tag[0]]: tag[1] });
}

async function startIdleNode(flags, env, intervalMs = 1e9) {
  const child = spawn(process.execPath, [...flags, '-e', `setInterval(() => {}, ${intervalMs})`], { stdio: 'ignore', env });
  return { pid: child.pid, stop: () => stopByPid(child.pid, 'idle node') };
}

function table(rows) {
  const fmt = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : 'n/a');
  console.log(`| process (one idle \`sleep 1000\` each) | median ms / 20 s | min | max | utime+stime, mean ms / 20 s |`);
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.error) console.log(`| ${r.name} | not run: ${r.error} | | | |`);
    else console.log(`| ${r.name} | ${fmt(r.median)} | ${fmt(Math.min(...r.windows))} | ${fmt(Math.max(...r.windows))} | ${fmt(r.statMean)} |`);
  }
}

function ratios(byKey) {
  const ratio = (a, b) => (byKey[a]?.median > 0 && byKey[b]?.median > 0 ? byKey[a].median / byKey[b].median : NaN);
  const say = (label, a, b, target) => {
    const x = ratio(a, b);
    const verdict = target === undefined || !Number.isFinite(x) ? '' : x <= target ? ` (target <= ${target}: met)` : ` (target <= ${target}: NOT met)`;
    console.log(`- ${label}: ${Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a'}${verdict}`);
  };
  say('autopilotd / supervisord', 'autopilotd', 'supervisord', 1);
  say('autopilotd / idle node', 'autopilotd', 'node', 3);
  say('autopilotd / idle node with the daemon\'s V8 flags', 'autopilotd', 'nodeFlags');
  say('autopilotd / PM2', 'autopilotd', 'pm2');
  say('autopilotd / systemd --user', 'autopilotd', 'systemd');
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const tmp = mkdtempSync(join(tmpdir(), 'apd-idle-'));
  const env = { ...neutralEnv(), [TAG.split('=')[0]]: TAG.split('=')[1] };
  // PM2's env is built by pm2.mjs from process.env: the tag reaches it (and its app) that way.
  process.env[TAG.split('=')[0]] = TAG.split('=')[1];
  const running = [];
  let sleepers = null;
  console.log(`load average at start: ${loadAverage()}`);
  try {
    if (SLEEPERS > 0) sleepers = await startSleepers(SLEEPERS, env);
    for (const peer of PEERS) {
      const dir = join(tmp, peer.key);
      mkdirSync(dir);
      try {
        running.push({ peer, ...(await peer.start(dir, env)) });
      } catch (err) {
        running.push({ peer, error: err.message.split('\n')[0] });
      }
    }
    const measured = running.filter((r) => !r.error);
    console.log(`processes visible: ${processCount()} (${SLEEPERS} extra sleepers); warm-up ${WARMUP_S} s, then ${WINDOWS} windows of ${WINDOW_S} s`);
    await sleep(WARMUP_S * 1000);
    const churn = pidChurn();
    const visible = [processCount()];
    const windows = new Map(measured.map((r) => [r, []]));
    const stat0 = new Map(measured.map((r) => [r, cpuOf(r.pid)]));
    let last = stat0;
    for (let w = 0; w < WINDOWS; w++) {
      await sleep(WINDOW_S * 1000);
      const now = new Map(measured.map((r) => [r, cpuOf(r.pid)]));
      visible.push(processCount());
      for (const r of measured) {
        if (now.get(r) === null) throw new Error(`${r.peer.name} (pid ${r.pid}) exited during the measurement`);
        windows.get(r).push(((now.get(r).runMs - last.get(r).runMs) * 20) / WINDOW_S);
      }
      last = now;
    }
    const rows = running.map((r) => {
      if (r.error) return { name: r.peer.name, key: r.peer.key, error: r.error };
      const ws = windows.get(r);
      const statMean = ((last.get(r).statMs - stat0.get(r).statMs) * 20) / (WINDOW_S * WINDOWS);
      return { name: `${r.peer.name} (pid ${r.pid})`, key: r.peer.key, windows: ws, median: median(ws), statMean };
    });
    console.log('');
    table(rows);
    console.log('\nmedian: on-CPU time from /proc/<pid>/task/*/schedstat (ns) per window; the last column is');
    console.log('utime+stime from /proc/<pid>/stat (10 ms ticks) over all windows. The supervisor process only.\n');
    ratios(Object.fromEntries(rows.map((r) => [r.key, r])));
    console.log(`load average at end: ${loadAverage()}; processes visible at the window ends: ${Math.min(...visible)}-${Math.max(...visible)}; ${churn()}`);
  } finally {
    for (const r of running.reverse()) if (!r.error) await r.stop().catch((err) => console.error(`stopping ${r.peer.name}: ${err.message}`));
    await sleepers?.stop();
    const left = await sweepTagged(TAG);
    if (left > 0) console.error(`${left} tagged process(es) outlived their supervisor's stop; ended by PID`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
