#!/usr/bin/env node
// How much a background daemon (`autopilotd start`, logging to its file) slows a worker that writes
// as fast as it can, and how long `status` takes meanwhile (issue #15, item 7). The worker writes
// 64 KiB chunks of numbered ~100-byte lines to stdout for a fixed time and records how many bytes
// it got out; the bench asks for status over the socket (daemon round trip) and through the CLI
// (process start to exit) during that time, then counts what reached the log files.
// Usage: npm run build && node bench/worker-output.mjs [seconds=5]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { writeDaemonConfig } from './daemon-config.mjs';
import { alive, neutralEnv } from './pm2.mjs';

const SECONDS = Number(process.argv[2] ?? 5);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/bin/autopilotd.cjs');
if (!(SECONDS > 0)) throw new Error(`seconds must be positive, got ${process.argv[2]}`);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);

const tmp = mkdtempSync(join(tmpdir(), 'apd-bench-output-'));
const resultPath = join(tmp, 'worker-result.json');
// fs.writeSync on a pipe the daemon does not drain fast enough blocks (or EAGAINs, retried): the
// bytes counted are the bytes the daemon let through.
const workerScript = `
const fs = require('node:fs');
const lines = [];
let size = 0;
for (let i = 0; size < 65536 - 128; i++) { const l = 'line ' + String(i).padStart(8, '0') + ' ' + 'x'.repeat(85) + '\\n'; lines.push(l); size += l.length; }
const chunk = Buffer.from(lines.join(''));
const until = Date.now() + ${SECONDS * 1000};
let bytes = 0;
const began = Date.now();
while (Date.now() < until) {
  try { bytes += fs.writeSync(1, chunk); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
}
fs.writeFileSync(${JSON.stringify(resultPath)}, JSON.stringify({ bytes, ms: Date.now() - began, chunkBytes: chunk.length }));
setInterval(() => {}, 1e6);
`;
const config = writeDaemonConfig(tmp, [
  '[worker]',
  `command = ${JSON.stringify([process.execPath, '-e', workerScript])}`,
  'stop_timeout_ms = 2000',
]);
const socketPath = join(tmp, 'd.sock');
const env = neutralEnv();

function statusOverSocket() {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const socket = createConnection(socketPath);
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('{"v":1,"id":1,"cmd":"status","args":{}}\n'));
    socket.on('data', (d) => {
      reply += d;
      if (reply.includes('\n')) {
        socket.destroy();
        if (!reply.includes('"ok":true')) reject(new Error(`status failed: ${reply}`));
        else resolve(performance.now() - began);
      }
    });
    socket.on('error', reject);
  });
}

function statusCli() {
  const began = performance.now();
  const r = spawnSync(process.execPath, [CLI, 'status', '--config', config], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`status exited ${r.status}: ${r.stderr}`);
  return performance.now() - began;
}

const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
};

let daemonPid = null;
try {
  const started = spawnSync(process.execPath, [CLI, 'start', '--config', config], { env, encoding: 'utf8' });
  if (started.status !== 0) throw new Error(`start exited ${started.status}: ${started.stderr}`);
  daemonPid = Number(/pid (\d+)/.exec(started.stdout)?.[1] ?? NaN);
  const socketMs = [];
  const cliMs = [];
  const floorMs = [];
  const began = Date.now();
  while (!existsSync(resultPath)) {
    if (Date.now() - began > SECONDS * 1000 + 60_000) throw new Error('the worker never reported');
    socketMs.push(await statusOverSocket());
    cliMs.push(statusCli());
    const b = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    floorMs.push(performance.now() - b);
    await new Promise((r) => setTimeout(r, 50));
  }
  const result = JSON.parse(readFileSync(resultPath, 'utf8'));
  // Let the daemon catch up before counting what reached the files.
  await new Promise((r) => setTimeout(r, 1000));
  const logDir = join(tmp, 'logs');
  let logBytes = 0;
  let dropped = 0;
  for (const name of readdirSync(logDir)) {
    if (!name.startsWith('autopilotd.log')) continue;
    logBytes += statSync(join(logDir, name)).size;
    for (const m of readFileSync(join(logDir, name), 'utf8').matchAll(/worker output lines dropped lines=(\d+)|dropped (\d+) log lines/g)) dropped += Number(m[1] ?? m[2]);
  }
  const mbps = result.bytes / 1e6 / (result.ms / 1000);
  console.log(`worker: ${(result.bytes / 1e6).toFixed(1)} MB in ${result.ms} ms = ${mbps.toFixed(1)} MB/s (${result.chunkBytes}-byte chunks of ~100-byte lines)`);
  console.log(`status over the socket, ${socketMs.length} asks while it wrote: median ${quantile(socketMs, 0.5).toFixed(1)} ms, p90 ${quantile(socketMs, 0.9).toFixed(1)} ms, max ${Math.max(...socketMs).toFixed(1)} ms`);
  console.log(`autopilotd status (CLI, start to exit), ${cliMs.length} runs: median ${quantile(cliMs, 0.5).toFixed(1)} ms, p90 ${quantile(cliMs, 0.9).toFixed(1)} ms, max ${Math.max(...cliMs).toFixed(1)} ms`);
  console.log(`node -e 0 (the floor for the CLI, same load), ${floorMs.length} runs: median ${quantile(floorMs, 0.5).toFixed(1)} ms, p90 ${quantile(floorMs, 0.9).toFixed(1)} ms`);
  console.log(`log files (rotated, kept part): ${(logBytes / 1e6).toFixed(1)} MB; worker lines reported dropped: ${dropped}`);
} finally {
  if (daemonPid !== null && alive(daemonPid)) {
    process.kill(daemonPid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (alive(daemonPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    if (alive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
}
