#!/usr/bin/env node
// Issue #15 items 5 and 6: what hostile or careless control clients cost the daemon's event loop
// and memory, and whether the operator still gets in. A real ControlServer (dist/) runs in this
// process with a status-like handler (settles at once, ~1 KiB reply) and a 1 s timer standing in
// for the memory guard's poll; the clients run in a child process so their work is not counted.
//   flood:      16 clients pipeline 10 000 `status` each and read the replies. Reported: the poll
//               timer's worst lateness, event-loop delay (monitorEventLoopDelay) max and p99, and
//               how long the flood took to be answered.
//   no-reader:  64 clients pipeline 10 000 `status` each and never read. Reported: RSS growth and
//               the bytes the server holds for them once it stops making progress.
//   idle:       1000 clients connect and say nothing, then one `status`; also 64 clients that send
//               one byte of a request and then nothing. Reported: the status reply (or error) and
//               its latency.
// Usage: npm run build && node bench/control-flood.mjs [scenario...]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MIB = 1024 * 1024;


// ---- client side (child process) ----

async function clients({ socketPath, count, requests, read, idle, drip }) {
  const line = (id) => `{"v":1,"id":${id},"cmd":"status"}\n`;
  const sockets = [];
  let answered = 0;
  // EAGAIN: the listen backlog is full for a moment (the server is closing evicted ones); retry.
  const connectOne = () =>
    new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('error', (err) => (err.code === 'EAGAIN' ? setTimeout(() => connectOne().then(resolve, reject), 10) : reject(err)));
      s.once('connect', () => {
        s.removeAllListeners('error');
        s.on('error', () => {});
        resolve(s);
      });
    });
  for (let i = 0; i < count; i++) sockets.push(await connectOne());
  process.send({ type: 'connected' });
  if (idle) return; // the parent kills this process when done
  if (drip) {
    for (const s of sockets) s.write('{');
    process.send({ type: 'dripped' });
    return;
  }
  await new Promise((resolve) => process.once('message', resolve)); // 'go'
  const done = [];
  for (const s of sockets) {
    let text = '';
    for (let i = 0; i < requests; i++) text += line(i);
    if (read) {
      let seen = 0;
      done.push(
        new Promise((resolve) => {
          s.on('data', (chunk) => {
            for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) seen++;
            if (seen === requests) resolve();
          });
          s.on('close', resolve);
        }).then(() => (answered += seen)),
      );
    } else {
      s.pause();
    }
    s.write(text);
  }
  process.send({ type: 'sent' });
  await Promise.all(done);
  process.send({ type: 'answered', answered });
}

// ---- server side (this process) ----

function statusLike() {
  const now = Date.now();
  return {
    daemon: { pid: process.pid, version: '0.1.0', started_at: new Date(now - 1e6).toISOString(), uptime_ms: 1e6, config_path: '/home/u/.autopilot/daemon.toml', log_target: '/home/u/.autopilot/autopilotd.log' },
    worker: { state: 'running', pid: 4242, generation: 3, started_at: new Date(now - 5e5).toISOString(), uptime_ms: 5e5, command: ['node', 'agent.mjs', '--loop'], consecutive_failures: 0, next_restart_at: null, last_exit: { code: 1, signal: null, at: new Date(now - 5e5).toISOString(), uptime_ms: 1234 } },
    restarts: { total: 2, crash: 1, memory: 1, operator: 0, health: 0 },
    memory: {
      level: 'ok', available_bytes: 8e9, psi: { some_avg10: 0.1, full_avg10: 0 }, tree_rss_bytes: 3e8, tree_processes: 4,
      top: [1, 2, 3, 4].map((i) => ({ pid: 4242 + i, comm: `node-${i}`, rss_bytes: i * 5e7 })),
      last_action: { kind: 'restart-worker', reason: 'tree_limit', pid: 4241, comm: 'node', rss_bytes: 3.1e8, at: new Date(now - 6e5).toISOString() },
    },
  };
}

async function startServer(dir, extra = {}) {
  const { ControlServer } = await import(join(ROOT, 'dist/src/control/server.js'));
  return ControlServer.listen({ socketPath: join(dir, 'run', 'd.sock'), handler: async () => statusLike(), ...extra });
}

function spawnClients(opts) {
  const child = fork(HERE, ['--clients', JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const events = [];
  const waiters = [];
  child.on('message', (m) => {
    events.push(m);
    for (const w of [...waiters]) if (w.type === m.type) w.resolve(m);
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    child,
    wait: (type) => {
      const seen = events.find((e) => e.type === type);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ type, resolve });
        exited.then(() => reject(new Error(`client process exited before '${type}'`)));
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A 1 s timer re-armed from its own callback, as the memory guard polls; records how late each fire was. */
function pollProbe(intervalMs = 1000) {
  const lateness = [];
  let due = performance.now() + intervalMs;
  let timer;
  const tick = () => {
    const now = performance.now();
    lateness.push(now - due);
    due = now + intervalMs;
    timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  return { lateness, stop: () => clearTimeout(timer) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (ms) => ms.toFixed(1).padStart(9);

async function flood(dir) {
  const server = await startServer(dir);
  const c = spawnClients({ socketPath: server.socketPath, count: 16, requests: 10_000, read: true });
  await c.wait('connected');
  // Let the poll timer run a little before the flood, so a late first fire is the flood's doing.
  const probe = pollProbe();
  const h = monitorEventLoopDelay({ resolution: 10 });
  await sleep(1100);
  h.enable();
  const began = performance.now();
  c.child.send('go');
  await c.wait('sent');
  const { answered } = await c.wait('answered');
  const floodMs = performance.now() - began;
  await sleep(1100); // one more poll after the flood
  h.disable();
  probe.stop();
  await c.kill();
  await server.close();
  const maxLate = Math.max(...probe.lateness);
  console.log(`flood: 16 x 10 000 pipelined status, ${answered} answered in ${floodMs.toFixed(0)} ms`);
  console.log(`  poll timer: ${probe.lateness.length} fires, worst ${maxLate.toFixed(1)} ms late`);
  console.log(`  event-loop delay: max ${fmt(h.max / 1e6)} ms, p99 ${fmt(h.percentile(99) / 1e6)} ms, mean ${fmt(h.mean / 1e6)} ms`);
}

async function noReader(dir) {
  const server = await startServer(dir);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const c = spawnClients({ socketPath: server.socketPath, count: 64, requests: 10_000, read: false });
  await c.wait('connected');
  c.child.send('go');
  await c.wait('sent');
  // Wait until the server stops making progress (nobody reads), sampling RSS meanwhile.
  let peakRss = process.memoryUsage().rss;
  let last = -1;
  for (let stable = 0; stable < 3; ) {
    await sleep(300);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const held = heldBytes(server);
    stable = held.total === last ? stable + 1 : 0;
    last = held.total;
  }
  const held = heldBytes(server);
  global.gc?.();
  const rssAfterGc = process.memoryUsage().rss;
  await c.kill();
  await server.close();
  console.log(`no-reader: 64 clients pipeline 10 000 status each and read nothing`);
  console.log(`  RSS: ${(rssBefore / MIB).toFixed(1)} MiB before, peak ${(peakRss / MIB).toFixed(1)} MiB, ${(rssAfterGc / MIB).toFixed(1)} MiB after gc`);
  console.log(`  server-side buffers once stalled: ${(held.readable / 1024).toFixed(0)} KiB unread input in sockets, ${(held.writable / 1024).toFixed(0)} KiB unsent replies`);
}

/** Bytes Node holds in the server's sockets (what the connections hold beyond that is not visible here). */
function heldBytes(server) {
  let readable = 0;
  let writable = 0;
  for (const c of server['connections']) {
    const s = c['socket'];
    readable += s.readableLength;
    writable += s.writableLength;
  }
  return { readable, writable, total: readable + writable };
}

async function statusAmong(dir, what, opts) {
  const server = await startServer(dir);
  const c = spawnClients({ socketPath: server.socketPath, ...opts });
  await c.wait('connected');
  if (opts.drip) await c.wait('dripped');
  await sleep(200);
  const { sendRequest } = await import(join(ROOT, 'dist/src/control/client.js'));
  const began = performance.now();
  let outcome;
  try {
    await sendRequest(server.socketPath, 'status', undefined, { timeoutMs: 10_000 });
    outcome = 'ok';
  } catch (err) {
    outcome = `${err.code}: ${err.message}`;
  }
  const ms = performance.now() - began;
  await c.kill();
  await server.close();
  console.log(`${what}: status -> ${outcome} in ${ms.toFixed(1)} ms`);
}

async function main(only) {
  const scenarios = {
    flood,
    'no-reader': noReader,
    idle: async (dir) => {
      await statusAmong(dir, 'idle: 1000 silent clients', { count: 1000, idle: true });
      await statusAmong(dir, 'idle: 64 clients with one byte of a request', { count: 64, drip: true });
    },
  };
  for (const name of only.length > 0 ? only : Object.keys(scenarios)) {
    const dir = mkdtempSync(join(tmpdir(), 'apd-flood-'));
    try {
      await scenarios[name](dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

if (process.argv[2] === '--clients') await clients(JSON.parse(process.argv[3]));
else await main(process.argv.slice(2));
