#!/usr/bin/env node
// What watching the daemon costs the daemon (#19): its CPU time (the run time of all its threads,
// /proc/<pid>/task/*/schedstat, in ns) per 1000 `metrics` requests over the control socket sent
// back to back (a flood: within 500 ms the daemon answers with the text it rendered last), and
// per request when each is rendered afresh (spaced 510 ms apart, as real scrapers are, every
// 15 s or so), beside its idle CPU over the same wall time; and its RSS (smaps_rollup) with 0 and
// with 10 event subscribers (`subscribe` with follow, as `autopilotd events -f`).
// Usage: npm run build && node bench/scrape-cost.mjs [requests=1000]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendRequest } from '../dist/src/control/client.js';
import { subscribeEvents } from '../dist/src/control/subscribe-client.js';
import { writeDaemonConfig } from './daemon-config.mjs';
import { alive } from './pm2.mjs';

const REQUESTS = Number(process.argv[2] ?? 1000);
const SUBSCRIBERS = 10;
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/bin/autopilotd.cjs');
const SPACED = 20;
const SPACE_MS = 510;

/** CPU time of all the process's threads (V8's helpers included), in ms, to the nanosecond. */
const cpuMs = (pid) => {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1e6;
};
const rssMiB = (pid) => Number(/^Rss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'apd-scrape-'));
const config = writeDaemonConfig(dir, ['[worker]', 'command = ["sleep", "100000"]', 'stop_timeout_ms = 2000']);
const socket = join(dir, 'd.sock');
let pid = null;
const abort = new AbortController();
try {
  const started = spawnSync(process.execPath, [cli, 'start', '--config', config], { encoding: 'utf8' });
  if (started.status !== 0) throw new Error(`daemon did not start: ${started.stderr}`);
  pid = Number(/pid (\d+)/.exec(started.stdout)[1]);
  await sleep(1000);

  const began = performance.now();
  const cpu0 = cpuMs(pid);
  for (let i = 0; i < REQUESTS; i++) {
    const data = await sendRequest(socket, 'metrics');
    if (typeof data.text !== 'string') throw new Error('no metrics text');
  }
  const scrapeCpu = cpuMs(pid) - cpu0;
  const wallMs = performance.now() - began;
  // The same daemon left alone for as long: what of the above is not the scrapes' doing.
  const idle0 = cpuMs(pid);
  await sleep(wallMs);
  const idleCpu = cpuMs(pid) - idle0;

  // Each rendered afresh: the reuse window has passed before every one.
  const spacedBegan = performance.now();
  const spaced0 = cpuMs(pid);
  for (let i = 0; i < SPACED; i++) {
    await sleep(SPACE_MS);
    await sendRequest(socket, 'metrics');
  }
  const spacedCpu = cpuMs(pid) - spaced0;
  const spacedWall = performance.now() - spacedBegan;
  const idle1 = cpuMs(pid);
  await sleep(spacedWall);
  const spacedIdle = cpuMs(pid) - idle1;

  const rssBefore = rssMiB(pid);
  const subscribed = [];
  let ready = 0;
  for (let i = 0; i < SUBSCRIBERS; i++) {
    subscribed.push(subscribeEvents(socket, { follow: true, onEvent: () => { ready++; }, signal: abort.signal }).catch(() => {}));
  }
  const deadline = Date.now() + 30_000;
  while (ready < SUBSCRIBERS && Date.now() < deadline) await sleep(50); // each gets the recent events first
  await sleep(1000);
  const rssWith = rssMiB(pid);

  const per1000 = (ms) => (ms * 1000) / REQUESTS;
  console.log(`${REQUESTS} metrics requests in ${wallMs.toFixed(0)} ms (${(wallMs / REQUESTS).toFixed(2)} ms each, client included)`);
  console.log(`daemon CPU per 1000 metrics requests back to back: ${per1000(scrapeCpu).toFixed(0)} ms (idle over the same time: ${per1000(idleCpu).toFixed(0)} ms)`);
  console.log(`daemon CPU per metrics request rendered afresh (${SPACED}, ${SPACE_MS} ms apart): ${((spacedCpu - spacedIdle) / SPACED).toFixed(2)} ms over idle (${(spacedCpu / SPACED).toFixed(2)} ms with the idle share)`);
  console.log(`daemon RSS: ${rssBefore.toFixed(1)} MiB with no subscriber, ${rssWith.toFixed(1)} MiB with ${SUBSCRIBERS} event subscribers${ready < SUBSCRIBERS ? ` (only ${ready} had an event)` : ''}`);
  abort.abort();
  await Promise.all(subscribed);
} finally {
  abort.abort();
  if (pid !== null && alive(pid)) {
    process.kill(pid, 'SIGTERM'); // the daemon stops its worker tree and removes its files
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await sleep(25);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}
