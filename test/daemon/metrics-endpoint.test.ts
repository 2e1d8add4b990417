// [metrics].listen on a real background daemon (issue #19, "Metrics"): GET /metrics scraped over
// loopback and checked by promtool, the figures following what the daemon does, only loopback bound
// for a bare port, a port in use failing the start, and an abusive client (huge headers answered
// 431, a slowloris cut by the header deadline, 200 connections past the cap dropped at accept)
// leaving `status` quick and the memory guard polling.
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { networkInterfaces } from 'node:os';
import { test, type TestContext } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { hasPromtool, PROMTOOL_MISSING, promtoolCheck } from '../helpers/promtool.js';
import { sandbox, SLEEP_WORKER, type Sandbox } from '../helpers/sandbox.js';
import { reusing } from '../../src/daemon/metrics-endpoint.js';
import { waitFor } from '../helpers/wait.js';

function scrape(port: number, host = '127.0.0.1'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/metrics', agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
  });
}

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

async function metricsDaemon(t: TestContext, listen: (port: number) => string, extra = ''): Promise<{ box: Sandbox; port: number }> {
  const port = await freePort();
  const box = sandbox(t, { body: `${extra}${SLEEP_WORKER}[metrics]\nlisten = ${JSON.stringify(listen(port))}\n` });
  await box.start();
  return { box, port };
}

test('a real daemon serves GET /metrics on loopback: promtool accepts it, and the figures follow a restart', async (t) => {
  const { box, port } = await metricsDaemon(t, (p) => String(p));
  await box.waitForLog(new RegExp(`serving metrics at http://127\\.0\\.0\\.1:${port}/metrics`));
  const first = await scrape(port);
  assert.equal(first.status, 200);
  assert.equal(first.type, 'text/plain; version=0.0.4; charset=utf-8');
  if (hasPromtool()) {
    const check = promtoolCheck(first.body);
    assert.ok(check.ok, `${check.output}\n${first.body}`);
  } else {
    t.diagnostic(`exposition not parsed: ${PROMTOOL_MISSING}`);
  }
  assert.equal(sample(first.body, 'autopilotd_worker_state{state="running"}'), 1);
  assert.equal(sample(first.body, 'autopilotd_worker_generation'), 1);
  assert.equal(sample(first.body, 'autopilotd_memory_level{level="ok"}') !== undefined, true);
  assert.ok(sample(first.body, 'autopilotd_daemon_resident_memory_bytes')! > 10 * 1024 * 1024);

  assert.equal((await box.cli(['restart'])).code, 0);
  // A scrape within RENDER_REUSE_MS of the last gets the same text: wait for the new one.
  const second = await waitFor('a scrape after the restart', async () => {
    const r = await scrape(port);
    return sample(r.body, 'autopilotd_worker_generation') === 2 ? r : null;
  });
  assert.equal(sample(second.body, 'autopilotd_worker_restarts_total{cause="operator"}'), 1);
  assert.equal(sample(second.body, 'autopilotd_worker_generation'), 2);
  assert.ok(sample(second.body, 'autopilotd_control_connections_accepted_total')! > sample(first.body, 'autopilotd_control_connections_accepted_total')!);

  // The CLI prints the same families over the control socket.
  const cli = await box.cli(['metrics']);
  assert.equal(cli.code, 0, cli.stderr);
  const names = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]!);
  assert.deepEqual(names(cli.stdout), names(second.body));
  if (hasPromtool()) assert.ok(promtoolCheck(cli.stdout).ok, promtoolCheck(cli.stdout).output);
});

test('a bare port binds loopback only: the machine\'s other addresses refuse the connection', async (t) => {
  const external = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
  if (external === undefined) return t.skip('no non-loopback IPv4 address on this machine');
  const { box, port } = await metricsDaemon(t, (p) => String(p));
  await box.waitForLog(/serving metrics at/);
  await assert.rejects(scrape(port, external.address), /ECONNREFUSED/);
  assert.equal((await scrape(port)).status, 200);
});

test('a listen port already in use fails the start, naming the address and the key; nothing is left running', async (t) => {
  const port = await freePort();
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen({ host: '127.0.0.1', port }, r));
  t.after(() => new Promise<void>((r) => taken.close(() => r())));
  const box = sandbox(t, { body: `${SLEEP_WORKER}[metrics]\nlisten = "127.0.0.1:${port}"\n` });
  const r = await box.cli(['start']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`cannot serve metrics over HTTP: 127\\.0\\.0\\.1:${port} \\(\\[metrics\\]\\.listen\\): EADDRINUSE`));
  await waitFor('the daemon and worker to be gone', () => box.processes().length === 0);
});

/** A raw client of the endpoint: what it received, and when (ms after connecting) it was closed. */
interface Raw { socket: net.Socket; received: string; connectedAt: number; closedAfterMs: number | null }

test('huge headers get 431 and a slowloris is cut by the server; connections past the cap are dropped; status stays quick', async (t) => {
  const { box, port } = await metricsDaemon(t, (p) => `localhost:${p}`, 'log_level = "debug"\n[memory]\npoll_interval_ms = 200\n');
  await box.waitForLog(/serving metrics at/);
  const raws: Raw[] = [];
  t.after(() => raws.forEach((r) => r.socket.destroy()));
  const open = (): Promise<Raw> => new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const raw: Raw = { socket, received: '', connectedAt: 0, closedAfterMs: null };
    raws.push(raw);
    socket.setEncoding('utf8').on('data', (d: string) => (raw.received += d));
    socket.on('error', () => {}); // a reset after the reply: what was received is what counts
    socket.once('close', () => (raw.closedAfterMs = Date.now() - raw.connectedAt));
    socket.once('connect', () => {
      raw.connectedAt = Date.now();
      resolve(raw);
    });
    socket.once('error', reject);
  });

  // First, under the connection cap: the server itself must cut these two.
  const slow = await open();
  slow.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => slow.socket.writable && slow.socket.write('X'), 200);
  t.after(() => clearInterval(drip));
  const big = await open();
  big.socket.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`);
  await waitFor('the huge-header client to be answered and closed', () => big.closedAfterMs !== null, 20_000);
  assert.match(big.received, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/, `huge headers: ${JSON.stringify(big.received)}`);

  // Then a flood past the cap (16 at once, the slowloris among them).
  const idle = await Promise.all(Array.from({ length: 200 }, () => open()));

  const samples = (): number => box.log().split('\n').filter((l) => / DEBUG memory level=/.test(l)).length;
  const before = samples();
  const began = Date.now();
  const statusMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = Date.now();
    const s = await box.status();
    statusMs.push(Date.now() - t0);
    assert.equal(s.worker.state, 'running');
    await new Promise((r) => setTimeout(r, 200));
  }
  const during = samples() - before;
  const elapsedMs = Date.now() - began;
  t.diagnostic(`status round trips under attack (ms): ${statusMs.join(' ')}; memory samples ${during} in ${elapsedMs} ms`);
  assert.ok(Math.max(...statusMs) < 1000, `status took ${Math.max(...statusMs)} ms at worst`);
  // Polls every 200 ms at most; allow a loaded machine half of them.
  assert.ok(during >= Math.floor(elapsedMs / 200 / 2), `only ${during} memory samples in ${elapsedMs} ms`);

  // Headers must be complete 5 s after connecting, checked every second: cut within about 6 s, by
  // that deadline and not the 10 s one for the whole request, whatever it still dribbles.
  await waitFor('the slowloris to be cut', () => slow.closedAfterMs !== null, 20_000);
  clearInterval(drip);
  t.diagnostic(`slowloris cut after ${slow.closedAfterMs} ms with ${JSON.stringify(slow.received.split('\r\n')[0])}; huge headers after ${big.closedAfterMs} ms`);
  assert.ok(slow.closedAfterMs! >= 4_500 && slow.closedAfterMs! < 9_000, `slowloris closed after ${slow.closedAfterMs} ms`);
  assert.match(slow.received, /^HTTP\/1\.1 408 Request Timeout\r\n/, `slowloris: ${JSON.stringify(slow.received)}`);

  // Past the cap, connections are closed at accept, with no answer, long before any deadline; the
  // ones admitted (at most 16 with the slowloris) stay until their own header deadline.
  const dropped = idle.filter((r) => r.closedAfterMs !== null && r.closedAfterMs < 4_000 && r.received === '');
  assert.ok(dropped.length >= 200 - 16 + 1 && dropped.length < 200, `${dropped.length} of 200 dropped at accept`);
  for (const r of raws) r.socket.destroy();
  await waitFor('a scrape to be served again', async () => (await scrape(port).catch(() => ({ status: 0 }))).status === 200, 20_000);
});

test('scrapes close together reuse one rendering; the next one after the pause renders again', () => {
  let clock = 0;
  let renders = 0;
  const render = reusing(() => `text ${++renders}`, 500, () => clock);
  assert.deepEqual([render(), render()], ['text 1', 'text 1']);
  clock = 499;
  assert.equal(render(), 'text 1');
  clock = 500;
  assert.deepEqual([render(), render()], ['text 2', 'text 2']);
});

test('a reload that changes [metrics].listen keeps serving where the daemon started, and says so', async (t) => {
  const { box, port } = await metricsDaemon(t, (p) => `127.0.0.1:${p}`);
  await box.waitForLog(/serving metrics at/);
  box.writeConfig(`${SLEEP_WORKER}[metrics]\nlisten = "127.0.0.1:${port + 1}"\n`);
  assert.equal((await box.cli(['reload'])).code, 0);
  await box.waitForLog(/reload: metrics\.listen changed; it takes effect when the daemon restarts/);
  assert.equal((await scrape(port)).status, 200);
});
