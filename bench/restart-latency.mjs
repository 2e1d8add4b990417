#!/usr/bin/env node
// Exit -> new worker process with zero backoff (#18), side by side: autopilotd, PM2, a private
// systemd user manager, supervisord, and a bash `while` loop as the floor (the cheapest possible
// supervisor: fork, exec, nothing else). Every peer runs the same worker, bench/restart-worker.sh:
// it stamps `s $EPOCHREALTIME` first thing, blocks reading one token from its peer's FIFO, stamps
// `e $EPOCHREALTIME` and exits. Gap = a run's `s` - the previous run's `e`: the old process's exit,
// the supervisor noticing and restarting, fork + exec + bash's start (the same for every peer; the
// floor row is mostly that). Tokens go out in batches, to one peer at a time in rotating order, so
// the peers take turns and the idle ones wait in `read`.
// Target (#18): autopilotd's median <= systemd's median.
// Usage: npm run build && node bench/restart-latency.mjs [extra sleepers: 0]
//   BENCH_RESTARTS (50 per peer), BENCH_RESTART_BATCH (10), BENCH_PEERS (all; e.g. floor,autopilotd),
//   BENCH_KEEP_TMP=1 keeps the temp dir (stamps, the daemons' logs) for a look afterwards
// With extra sleepers (`1000`, as the idle-CPU bench has), today's daemon pays for its full scans.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDetachedDaemon } from './daemon-config.mjs';
import { PM2, ensurePm2, neutralEnv, stopPm2 } from './pm2.mjs';
import { loadAverage, median, pidChurn, processCount, quantile, signal, startSleepers, stopByPid, sweepTagged, waitFor } from './processes.mjs';
import { startSupervisord } from './supervisord.mjs';
import { startUserManager } from './systemd-user.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/bin/autopilotd.cjs');
const WORKER = fileURLToPath(new URL('restart-worker.sh', import.meta.url));
const num = (name, fallback) => Number(process.env[name] ?? fallback);
const RESTARTS = num('BENCH_RESTARTS', 50);
const BATCH = num('BENCH_RESTART_BATCH', 10);
const SLEEPERS = Number(process.argv[2] ?? 0);
const [TAG_NAME, TAG_VALUE] = ['APD_BENCH_TAG', `restart-latency-${randomBytes(4).toString('hex')}`];

const PEERS = [
  { name: 'bash `while :; do worker; done` (floor)', key: 'floor', start: startFloor },
  { name: 'autopilotd (backoff 1 ms, the least it accepts)', key: 'autopilotd', start: startAutopilotd },
  { name: 'PM2 (restart_delay 0)', key: 'pm2', start: startPm2Peer },
  { name: 'systemd --user (Restart=always, RestartSec=0)', key: 'systemd', start: startSystemdPeer },
  { name: 'supervisord (autorestart, startsecs=0)', key: 'supervisord', start: startSupervisordPeer },
];

async function startFloor(dir, env, argv) {
  const loop = spawn('/bin/bash', ['-c', 'while :; do "$@"; done', 'floor', ...argv], { detached: true, stdio: 'ignore', env });
  return { pid: loop.pid, stop: async () => signal(-loop.pid, 'SIGKILL') };
}

async function startAutopilotd(dir, env, argv) {
  return startDetachedDaemon(dir, env, [
    '[worker]', `command = ${JSON.stringify(argv)}`,
    '[restart]', 'initial_backoff_ms = 1', 'max_backoff_ms = 1', 'backoff_multiplier = 1.0', 'max_consecutive_restarts = 1000000000',
  ]);
}

async function startPm2Peer(dir, env, argv) {
  ensurePm2();
  const home = join(dir, 'pm2');
  const pm2Env = { ...env, PM2_HOME: home };
  const ecosystem = join(dir, 'ecosystem.json');
  // min_uptime 0: no run counts as unstable, so PM2 never gives up (max_restarts) on the loop.
  writeFileSync(ecosystem, JSON.stringify({
    apps: [{ name: 'bench-restart', script: argv[0], args: argv.slice(1), interpreter: 'none', autorestart: true, restart_delay: 0, min_uptime: 0, max_restarts: 1e9 }],
  }));
  const r = spawnSync(PM2, ['start', ecosystem], { env: pm2Env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pm2 start exited ${r.status}: ${r.stdout}${r.stderr}`);
  const pm2 = { pid: Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim()), env: pm2Env };
  return { pid: pm2.pid, stop: () => stopPm2(pm2, home) };
}

async function startSystemdPeer(dir, env, argv) {
  const unit = [
    '[Unit]', 'StartLimitIntervalSec=0',
    '[Service]', `ExecStart=${argv.join(' ')}`, 'Restart=always', 'RestartSec=0', '',
  ].join('\n');
  return startUserManager(dir, { 'bench-restart.service': unit }, { [TAG_NAME]: TAG_VALUE });
}

async function startSupervisordPeer(dir, env, argv) {
  return startSupervisord(dir, [`command=${argv.join(' ')}`, 'autorestart=true', 'startsecs=0', 'startretries=1000000'], env);
}

/** The worker's stamps in `log`: gaps in ms between each `e` and the `s` after it. */
function gapsOf(log) {
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [kind, stamp] = l.split(' ');
    return { kind, us: Number(stamp.replace(',', '.').replace('.', '')) };
  });
  const gaps = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i - 1].kind === 'e' && lines[i].kind === 's') gaps.push((lines[i].us - lines[i - 1].us) / 1000);
    else if (lines[i - 1].kind === lines[i].kind) throw new Error(`${log}: two '${lines[i].kind}' stamps in a row at line ${i + 1}: two workers at once?`);
  }
  return gaps;
}

const starts = (log) => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('s ')).length : 0);

/** Lets `n` runs of the peer's worker end, then waits for the n-th new start (blocked on its token). */
async function releaseBatch(r, n) {
  const before = starts(r.log);
  writeSync(r.tokens, 'go\n'.repeat(n));
  await waitFor(`${r.peer.name}: ${n} restarts`, () => starts(r.log) >= before + n, 120_000, 20);
}

function table(rows) {
  const floor = rows.find((r) => r.key === 'floor' && !r.error);
  console.log('| supervisor | restarts | median ms | p90 ms | max ms | median over the floor ms |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.error) {
      console.log(`| ${r.name} | not run: ${r.error} | | | | |`);
      continue;
    }
    const over = floor === undefined ? 'n/a' : (r.median - floor.median).toFixed(1);
    console.log(`| ${r.name} | ${r.gaps.length} | ${r.median.toFixed(1)} | ${quantile(r.gaps, 0.9).toFixed(1)} | ${Math.max(...r.gaps).toFixed(1)} | ${over} |`);
  }
  const by = Object.fromEntries(rows.filter((r) => !r.error).map((r) => [r.key, r]));
  const ratio = (a, b) => (by[a] && by[b] ? `${(by[a].median / by[b].median).toFixed(2)}x` : 'n/a');
  const met = by.autopilotd && by.systemd ? (by.autopilotd.median <= by.systemd.median ? 'met' : 'NOT met') : 'n/a';
  console.log(`\n- autopilotd / systemd (median): ${ratio('autopilotd', 'systemd')} (target <= 1: ${met})`);
  console.log(`- autopilotd / PM2 (median): ${ratio('autopilotd', 'pm2')}`);
  console.log(`- autopilotd / supervisord (median): ${ratio('autopilotd', 'supervisord')}`);
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const tmp = mkdtempSync(join(tmpdir(), 'apd-restart-'));
  process.env[TAG_NAME] = TAG_VALUE; // PM2's env and the sleepers' come from ours
  const env = { ...neutralEnv(), LC_ALL: 'C' };
  const running = [];
  let sleepers = null;
  console.log(`load average at start: ${loadAverage()}`);
  try {
    if (SLEEPERS > 0) sleepers = await startSleepers(SLEEPERS, env);
    const wanted = process.env.BENCH_PEERS?.split(',');
    for (const peer of PEERS.filter((p) => wanted === undefined || wanted.includes(p.key))) {
      const dir = join(tmp, peer.key);
      mkdirSync(dir);
      const log = join(dir, 'stamps.log');
      const fifo = join(dir, 'tokens');
      spawnSync('mkfifo', [fifo]);
      // Read-write: opening never blocks, and the FIFO keeps its unread tokens between workers.
      const tokens = openSync(fifo, 'r+');
      try {
        const started = await peer.start(dir, env, ['/bin/bash', WORKER, log, fifo]);
        running.push({ peer, log, tokens, ...started });
        await waitFor(`${peer.name}: the first worker`, () => starts(log) >= 1, 60_000, 20);
      } catch (err) {
        running.push({ peer, log, tokens, error: err.message.split('\n')[0] });
      }
    }
    const measured = running.filter((r) => !r.error && r.pid !== undefined);
    console.log(`processes visible: ${processCount()} (${SLEEPERS} extra sleepers); ${RESTARTS} restarts per supervisor in batches of ${BATCH}, rotating`);
    const churn = pidChurn();
    for (let round = 0; round * BATCH < RESTARTS; round++) {
      const n = Math.min(BATCH, RESTARTS - round * BATCH);
      for (let i = 0; i < measured.length; i++) await releaseBatch(measured[(round + i) % measured.length], n);
    }
    const rows = running.map((r) => {
      if (r.error) return { name: r.peer.name, key: r.peer.key, error: r.error };
      const gaps = gapsOf(r.log);
      return { name: r.peer.name, key: r.peer.key, gaps, median: median(gaps) };
    });
    console.log('');
    table(rows);
    console.log(`load average at end: ${loadAverage()}; processes visible: ${processCount()}; ${churn()}`);
  } finally {
    for (const r of running.reverse()) {
      if (!r.error) await r.stop().catch((err) => console.error(`stopping ${r.peer.name}: ${err.message}`));
      closeSync(r.tokens);
    }
    await sleepers?.stop();
    const left = await sweepTagged(`${TAG_NAME}=${TAG_VALUE}`);
    if (left > 0) console.error(`${left} tagged process(es) outlived their supervisor's stop; ended by PID`);
    if (process.env.BENCH_KEEP_TMP) console.error(`kept ${tmp} (BENCH_KEEP_TMP)`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
