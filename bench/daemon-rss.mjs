// The daemon's own memory: RSS and private memory (Private_Clean + Private_Dirty from
// /proc/<pid>/smaps_rollup) of a detached autopilotd right after start and after a stretch of
// fast memory polling (100 ms, so scanning runs ~10 times a second), held against an idle `node`
// process (Node's floor), an idle `node` started with the daemon's V8 flags (the floor the #18
// target is read against: daemon RSS within 6 MiB of it) and PM2's daemon supervising the same
// `sleep`, in the same run.
// Run after `npm run build`.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../dist/src/cli/daemon-node-flags.js';
import { writeDaemonConfig } from './daemon-config.mjs';
import { startPm2, stopPm2 } from './pm2.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/bin/autopilotd.cjs');
const POLL_SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? 20);

function memoryOf(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rssMiB: kb('Rss') / 1024, privateMiB: (kb('Private_Clean') + kb('Private_Dirty')) / 1024 };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function benchDaemonRss() {
  const dir = mkdtempSync(join(tmpdir(), 'apd-rss-'));
  const config = writeDaemonConfig(dir, [
    '[worker]', 'command = ["sleep", "100000"]',
    // Always "near" a threshold: the guard polls at its 100 ms floor for the whole run.
    '[memory]', 'poll_interval_ms = 100', 'worker_max_bytes = "1MiB"', 'cooldown_ms = 3600000',
  ]);
  const floor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const flaggedFloor = spawn(process.execPath, [...DAEMON_NODE_FLAGS, '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const pm2Home = join(dir, 'pm2');
  let daemonPid = null;
  let pm2 = null;
  try {
    pm2 = startPm2(pm2Home);
    const started = spawnSync(process.execPath, [cli, 'start', '--config', config], { encoding: 'utf8' });
    if (started.status !== 0) throw new Error(`daemon did not start: ${started.stderr}`);
    daemonPid = Number(/pid (\d+)/.exec(started.stdout)[1]);
    await sleep(1000);
    const atStart = memoryOf(daemonPid);
    const floorMem = memoryOf(floor.pid);
    const flaggedFloorMem = memoryOf(flaggedFloor.pid);
    const pm2AtStart = memoryOf(pm2.pid);
    await sleep(POLL_SECONDS * 1000);
    const afterPolling = memoryOf(daemonPid);
    const pm2After = memoryOf(pm2.pid);
    return [
      { what: 'idle node (floor)', ...floorMem },
      { what: `idle node with the daemon's V8 flags (${DAEMON_NODE_FLAGS.join(' ')})`, key: 'flaggedFloor', ...flaggedFloorMem },
      { what: 'autopilotd after start', key: 'daemonStart', ...atStart },
      { what: `autopilotd after ${POLL_SECONDS} s polling every 100 ms`, key: 'daemonAfter', ...afterPolling },
      { what: 'PM2 daemon after start', ...pm2AtStart },
      { what: `PM2 daemon ${POLL_SECONDS} s later`, ...pm2After },
    ];
  } finally {
    floor.kill('SIGKILL');
    flaggedFloor.kill('SIGKILL');
    await stopPm2(pm2, pm2Home);
    if (daemonPid !== null) spawnSync(process.execPath, [cli, 'stop', '--config', config], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printDaemonRss(rows) {
  console.log('\nDaemon memory (MiB)');
  console.log('| process | RSS | private |');
  console.log('|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.what} | ${r.rssMiB.toFixed(1)} | ${r.privateMiB.toFixed(1)} |`);
  const floor = rows.find((r) => r.key === 'flaggedFloor');
  const gaps = ['daemonStart', 'daemonAfter'].map((key) => rows.find((r) => r.key === key).rssMiB - floor.rssMiB);
  const worst = Math.max(...gaps);
  console.log(`\nautopilotd RSS - idle node with the same V8 flags: ${gaps.map((g) => g.toFixed(1)).join(' MiB after start, ')} MiB after polling (target #18: <= 6 MiB, ${worst <= 6 ? 'met' : 'NOT met'})`);
}

if (import.meta.url === `file://${process.argv[1]}`) printDaemonRss(await benchDaemonRss());
