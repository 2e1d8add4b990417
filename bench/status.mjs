#!/usr/bin/env node
// How long `autopilotd status` (and `metrics`) takes from process start to exit, next to `pm2 jlist` (the same
// question asked of PM2's daemon) and `node -e 0` (the floor: starting Node itself). Both daemons
// run one idle app (`sleep 1000`); the commands are timed interleaved, in a rotating order, so
// drift in machine load hits all of them alike. A bare node:net client of the same socket shows
// what any Node client costs beyond the floor.
// Usage: npm run build && node bench/status.mjs [runs=30]
// PM2 is not a dependency: on first use it is installed into bench/.peers (git-ignored). Its
// daemon gets a temp PM2_HOME, so a user's own PM2 is never touched.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { writeDaemonConfig } from './daemon-config.mjs';
import { PM2, alive, ensurePm2, neutralEnv, startPm2, stopPm2 } from './pm2.mjs';

const RUNS = Number(process.argv[2] ?? 30);
const WARMUP = 3;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/bin/autopilotd.cjs');

if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`runs must be a positive integer, got ${process.argv[2]}`);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
ensurePm2();

const tmp = mkdtempSync(join(tmpdir(), 'apd-bench-'));
const pm2Home = join(tmp, 'pm2');
// Neither daemon may see the caller's settings for it.
const baseEnv = neutralEnv();
const apdEnv = baseEnv;
const pm2Env = { ...baseEnv, PM2_HOME: pm2Home };
const config = writeDaemonConfig(tmp, ['[worker]', 'command = ["sleep", "1000"]', 'stop_timeout_ms = 2000']);

let apdPid = null;
let pm2 = null;
let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true; // finish the current run, then clean up below
});

function run(argv, env) {
  const began = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - began;
  if (r.error) throw r.error;
  return { ms, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mustRun(argv, env) {
  const r = run(argv, env);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
  return r;
}

async function stopByPid(pid, what, graceMs) {
  if (pid === null || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (alive(pid)) {
    console.error(`${what} (pid ${pid}) still running after ${graceMs} ms: SIGKILL`);
    process.kill(pid, 'SIGKILL');
  }
}

/**
 * The same commands' CPU time (user + sys from wait4, by bench/child-time.py): on a loaded, shared
 * machine wall time mostly measures the queue for a core; CPU time much less so.
 */
function cpuTable(commands) {
  const input = JSON.stringify(commands.map((c) => ({ argv: c.argv, env: c.env })));
  const r = spawnSync('python3', [join(ROOT, 'bench/child-time.py'), String(RUNS)], { input, encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    console.log(`(no CPU-time table: python3 bench/child-time.py ${r.error?.message ?? `exited ${r.status}: ${r.stderr}`})`);
    return;
  }
  const results = JSON.parse(r.stdout);
  console.log(`\nCPU time (user + sys) of the same commands, ${RUNS} runs each, interleaved`);
  console.log(`${'command'.padEnd(22)}${'median ms'.padStart(11)}${'p90 ms'.padStart(9)}${'over floor'.padStart(12)}`);
  const medians = results.map((x) => quantile([...x.cpu].sort((a, b) => a - b), 0.5));
  commands.forEach((c, i) => {
    const sorted = [...results[i].cpu].sort((a, b) => a - b);
    console.log(`${c.name.padEnd(22)}${medians[i].toFixed(1).padStart(11)}${quantile(sorted, 0.9).toFixed(1).padStart(9)}${`+${(medians[i] - medians[0]).toFixed(1)}`.padStart(12)}`);
  });
}

/** A status request with nothing around it: no checks, no note, no formatting. */
const BARE_CLIENT = `const s = require('node:net').connect(process.argv[1]);
s.on('connect', () => s.write('{"v":1,"id":1,"cmd":"status"}\\n'));
let got = '';
s.on('data', (d) => { got += d; if (got.includes('\\n')) { require('node:fs').writeSync(1, got); s.destroy(); } });`;

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

try {
  const started = mustRun([process.execPath, CLI, 'start', '--config', config], apdEnv);
  apdPid = Number(/pid (\d+)/.exec(started.stdout)?.[1] ?? NaN);
  if (!Number.isInteger(apdPid)) throw new Error(`cannot read the daemon pid from: ${started.stdout}`);

  pm2 = startPm2(pm2Home);
  const apps = JSON.parse(mustRun([PM2, 'jlist'], pm2Env).stdout);
  if (apps.length !== 1 || apps[0].pm2_env.status !== 'online') throw new Error(`pm2 app not online: ${JSON.stringify(apps.map((a) => a.pm2_env.status))}`);

  // The CLI notes where the daemon is only for a config file unchanged for 2 s (src/cli/location-cache.ts):
  // a user's file is older than that; this one was just written.
  await new Promise((r) => setTimeout(r, 2100));
  const commands = [
    { name: 'node -e 0 (floor)', argv: [process.execPath, '-e', '0'], env: baseEnv, ms: [] },
    // The least any Node client of the socket can do: node:net, one request, the reply to stdout.
    { name: 'bare net round trip', argv: [process.execPath, '-e', BARE_CLIENT, join(tmp, 'd.sock')], env: baseEnv, ms: [] },
    { name: 'autopilotd status', argv: [process.execPath, CLI, 'status', '--json', '--config', config], env: apdEnv, ms: [] },
    { name: 'autopilotd metrics', argv: [process.execPath, CLI, 'metrics', '--config', config], env: apdEnv, ms: [] },
    { name: 'pm2 jlist', argv: [PM2, 'jlist'], env: pm2Env, ms: [] },
  ];
  for (let i = 0; i < WARMUP + RUNS && !interrupted; i++) {
    // Rotate which command goes first, so none always runs right after another one.
    for (let j = 0; j < commands.length; j++) {
      const c = commands[(i + j) % commands.length];
      const r = mustRun(c.argv, c.env);
      if (i >= WARMUP) c.ms.push(r.ms);
    }
  }
  if (interrupted) throw new Error('interrupted');

  const stats = new Map(commands.map((c) => {
    const sorted = [...c.ms].sort((a, b) => a - b);
    return [c.name, { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9) }];
  }));
  console.log(`\n${RUNS} runs each, process start to exit, interleaved (node ${process.version}, ${process.platform} ${process.arch})\n`);
  console.log(`${'command'.padEnd(22)}${'median ms'.padStart(11)}${'p90 ms'.padStart(9)}`);
  for (const [name, s] of stats) console.log(`${name.padEnd(22)}${s.median.toFixed(1).padStart(11)}${s.p90.toFixed(1).padStart(9)}`);
  const apd = stats.get('autopilotd status');
  const pm2Stats = stats.get('pm2 jlist');
  const floor = stats.get('node -e 0 (floor)');
  console.log(`\npm2 jlist / autopilotd status:     ${(pm2Stats.median / apd.median).toFixed(2)}x (median), ${(pm2Stats.p90 / apd.p90).toFixed(2)}x (p90)`);
  console.log(`autopilotd status / node -e 0:     ${(apd.median / floor.median).toFixed(2)}x (median), +${(apd.median - floor.median).toFixed(1)} ms over the floor`);
  const bare = stats.get('bare net round trip');
  console.log(`bare net round trip / node -e 0:   ${(bare.median / floor.median).toFixed(2)}x (median), +${(bare.median - floor.median).toFixed(1)} ms over the floor`);
  const met = stats.get('autopilotd metrics');
  console.log(`autopilotd metrics / node -e 0:    ${(met.median / floor.median).toFixed(2)}x (median), +${(met.median - floor.median).toFixed(1)} ms over the floor`);
  cpuTable(commands);
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  console.log(`NODE_EXTRA_CA_CERTS: ${ca ? `set (${ca}); every Node start above reads it, floor included` : 'not set'}`);
} finally {
  await stopPm2(pm2, pm2Home);
  // SIGTERM: the daemon stops its worker tree, removes its files and exits.
  await stopByPid(apdPid, 'autopilotd', 10_000);
  rmSync(tmp, { recursive: true, force: true });
}
