// GET /metrics over HTTP (MetricsHttpServer): what is served and what is refused, and the limits
// that keep an abusive client from holding the daemon: slow headers, huge headers, a connection that
// never sends a byte, an idle keep-alive, and more connections than the cap. Real sockets on
// loopback, with the deadlines made short so that the test waits seconds, not minutes.
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { test, type TestContext } from 'node:test';
import { MetricsHttpServer, type MetricsHttpOptions } from '../../src/control/metrics-http.js';
import { waitFor } from '../helpers/wait.js';

async function serve(t: TestContext, opts: Partial<MetricsHttpOptions> = {}): Promise<MetricsHttpServer> {
  const server = await MetricsHttpServer.listen({ host: '127.0.0.1', port: 0, render: () => '# HELP x_total x\n# TYPE x_total counter\nx_total 1\n', ...opts });
  t.after(() => server.close());
  return server;
}

function get(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw client: what it received, and whether the server closed it. */
async function rawClient(t: TestContext, port: number): Promise<{ socket: net.Socket; received: () => string; closed: () => boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => (received += c));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise((r) => socket.once('connect', r));
  return { socket, received: () => received, closed: () => closed };
}

test('GET and HEAD /metrics get the text as format 0.0.4; any other path is 404, any other method 405', async (t) => {
  const server = await serve(t);
  const ok = await get(server.port, '/metrics');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(ok.body, '# HELP x_total x\n# TYPE x_total counter\nx_total 1\n');
  assert.equal((await get(server.port, '/metrics?name[]=x')).status, 200, 'a query (Prometheus params) is ignored');
  const head = await get(server.port, '/metrics', 'HEAD');
  assert.deepEqual([head.status, head.body, head.headers['content-length']], [200, '', String(ok.body.length)]);
  for (const path of ['/', '/metrics/', '/metricsx', '/../metrics', '/favicon.ico']) {
    const r = await get(server.port, path);
    assert.equal(r.status, 404, path);
    assert.equal(r.headers.connection, 'close');
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = await get(server.port, '/metrics', method);
    assert.deepEqual([r.status, r.headers.allow], [405, 'GET, HEAD'], method);
  }
  assert.deepEqual(server.stats, { scrapes: 3, refused: 9, dropped: 0 });
});

test('a render that throws is a 500 and is told; the server goes on', async (t) => {
  const told: string[] = [];
  let fail = true;
  const server = await serve(t, {
    render: () => {
      if (fail) throw new Error('no status');
      return 'x 1\n';
    },
    onError: (m) => told.push(m),
  });
  assert.equal((await get(server.port, '/metrics')).status, 500);
  assert.deepEqual(told, ['rendering the metrics: no status']);
  fail = false;
  assert.equal((await get(server.port, '/metrics')).body, 'x 1\n');
});

test('headers over the size limit get 431 and the connection is closed', async (t) => {
  const server = await serve(t, { maxHeaderBytes: 4096 });
  const c = await rawClient(t, server.port);
  c.socket.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  await waitFor('the server to close the connection', () => c.closed());
  assert.match(c.received(), /^HTTP\/1\.1 431 /);
});

test('a slowloris (a header byte now and then) is cut at the headers deadline, and others are served meanwhile', async (t) => {
  const server = await serve(t, { headersTimeoutMs: 1000 });
  const c = await rawClient(t, server.port);
  c.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
  const began = Date.now();
  const drip = setInterval(() => c.socket.writable && c.socket.write('X'), 100);
  t.after(() => clearInterval(drip));
  assert.equal((await get(server.port, '/metrics')).status, 200, 'served while the slowloris drips');
  await waitFor('the slowloris to be cut', () => c.closed(), 10_000);
  clearInterval(drip);
  const tookMs = Date.now() - began;
  assert.ok(tookMs >= 900 && tookMs < 5000, `cut after ${tookMs} ms (deadline 1000 ms, checked every second)`);
  assert.doesNotMatch(c.received(), /200 OK/);
});

test('a connection that never sends a byte, and an idle keep-alive, are closed', async (t) => {
  const server = await serve(t, { headersTimeoutMs: 1000, requestTimeoutMs: 1500, keepAliveTimeoutMs: 300 });
  const silent = await rawClient(t, server.port);
  const kept = await rawClient(t, server.port);
  kept.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the keep-alive reply', () => kept.received().includes('x_total 1\n'));
  const answeredAt = Date.now();
  await waitFor('the idle keep-alive to be closed', () => kept.closed(), 5000);
  assert.ok(Date.now() - answeredAt < 3000, `keep-alive closed after ${Date.now() - answeredAt} ms`);
  await waitFor('the silent connection to be closed', () => silent.closed(), 10_000);
  assert.equal(silent.received().includes('200 OK'), false);
});

test('past the connection cap new connections are closed at once, and served again once there is room', async (t) => {
  const server = await serve(t, { maxConnections: 4 });
  const held = [];
  for (let i = 0; i < 4; i++) held.push(await rawClient(t, server.port));
  await waitFor('4 connections accepted', () => server.connectionCount === 4);
  const extra = await rawClient(t, server.port);
  await waitFor('the extra connection to be closed', () => extra.closed());
  assert.equal(server.stats.dropped, 1);
  for (const c of held) c.socket.destroy();
  await waitFor('a scrape to get in again', async () => (await get(server.port, '/metrics').catch(() => ({ status: 0 }))).status === 200);
});
