// Socket abuse against one daemon while `status` is probed every 200 ms: garbage, invalid JSON,
// 1 MiB and 100 MiB lines without a newline, 1000 idle connections, half-open clients that write
// and never read, byte-a-second clients, 16 × 10 000 pipelined requests. `status` must answer
// throughout (no failure, none slower than 1 s), the memory guard must poll on time (no sample
// more than 250 ms after the time it announced), and the daemon's fds and RSS must come back to
// their baseline once the abusers are gone.

import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { Verdict, type CaseContext, type ReliabilityCase } from '../case.js';
import { MIB, MaxSampler, StatusProber, probeOnce, fdsOf, mib, pollLateness, rssOf, sleep } from '../measure.js';

const STATUS = '{"v":1,"id":1,"cmd":"status"}\n';

function connect(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Connects, writes `data` (in order, waiting for drain), ends, counts reply lines until close. */
function sendAndCount(path: string, data: Buffer[], timeoutMs = 60_000): Promise<{ replies: number; accepted: number; error: string | null }> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    let replies = 0;
    let accepted = 0;
    let error: string | null = null;
    let closed = false;
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (c: Buffer) => {
      for (const b of c) if (b === 10) replies += 1;
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ replies, accepted, error });
    });
    s.once('connect', async () => {
      for (const chunk of data) {
        if (closed) return;
        const ok = s.write(chunk, (err) => {
          if (!err) accepted += chunk.length;
        });
        if (!ok) await new Promise((r) => s.once('drain', r).once('close', r));
      }
      if (!closed) s.end();
    });
  });
}

export const socketAbuse: ReliabilityCase = {
  name: 'socket-abuse',
  async run(ctx: CaseContext) {
    const v = new Verdict();
    const box = ctx.sandbox({ body: 'log_level = "debug"\n[memory]\npoll_interval_ms = 500\n[worker]\ncommand = ["sleep", "1000"]\nstop_timeout_ms = 2000\n' });
    const open: net.Socket[] = [];
    ctx.defer(() => {
      for (const s of open) s.destroy();
    });
    const { pid } = await box.start();
    await sleep(1500);
    const rss0 = rssOf(pid);
    const fds0 = fdsOf(pid);
    const since = Date.now();
    const prober = new StatusProber(box.socketPath, 200, 5000);
    const rssMax = new MaxSampler(() => rssOf(pid));
    const path = box.socketPath;

    // Garbage and invalid JSON.
    ctx.log('Garbage and invalid JSON.');
    const garbage = await Promise.all(Array.from({ length: ctx.n(50, 5) }, () => sendAndCount(path, [randomBytes(4096), Buffer.from('\n')])));
    const badJson = await sendAndCount(path, [Buffer.from('{not json\n'.repeat(ctx.n(1000, 10)))]);
    v.fig('bad_json_replies', badJson.replies);
    // Lines without a newline: 1 MiB and 100 MiB.
    ctx.log('Lines without a newline: 1 MiB and 100 MiB.');
    const oneMiB = await sendAndCount(path, [Buffer.alloc(MIB, 0x61)]);
    const hundred = await sendAndCount(path, Array.from({ length: ctx.n(100, 10) }, () => Buffer.alloc(MIB, 0x61)));
    v.fig('long_line_accepted', `${mib(oneMiB.accepted)},${mib(hundred.accepted)}`);

    // 1000 idle connections, held while status is probed.
    ctx.log('1000 idle connections, held while status is probed.');
    const idle = await Promise.allSettled(Array.from({ length: ctx.n(1000, 100) }, () => connect(path)));
    for (const r of idle) if (r.status === 'fulfilled') open.push(r.value);
    v.fig('idle_connected', idle.filter((r) => r.status === 'fulfilled').length);
    const idleStatus = await probeOnce(path);
    v.fig('status_with_idle', idleStatus);
    await sleep(3000);
    for (const s of open.splice(0)) s.destroy();

    // Half-open clients: write many requests, never read.
    ctx.log('Half-open clients: write many requests, never read.');
    const halfOpen: net.Socket[] = [];
    for (let i = 0; i < 16; i++) {
      const s = await connect(path).catch(() => null);
      if (s === null) continue;
      s.pause();
      s.write(STATUS.repeat(ctx.n(10_000, 100)));
      halfOpen.push(s);
    }
    await sleep(3000);
    v.fig('status_with_half_open', await probeOnce(path));
    for (const s of halfOpen) s.destroy();

    // Byte-a-second clients (10 s of them).
    ctx.log('Byte-a-second clients (10 s of them).');
    const slow: net.Socket[] = [];
    for (let i = 0; i < ctx.n(20, 4); i++) {
      const s = await connect(path).catch(() => null);
      if (s !== null) {
        s.on('error', () => {});
        s.resume();
        slow.push(s);
      }
    }
    for (let sec = 0; sec < 10; sec++) {
      for (const s of slow) if (!s.destroyed) s.write(STATUS[sec % STATUS.length]!);
      await sleep(1000);
    }
    v.fig('status_with_slow', await probeOnce(path));
    for (const s of slow) s.destroy();

    // 16 × 10 000 pipelined requests, every reply read.
    ctx.log('16 × 10 000 pipelined requests, every reply read.');
    const perConn = ctx.n(10_000, 100);
    const t0 = performance.now();
    const piped = await Promise.all(Array.from({ length: 16 }, () => sendAndCount(path, [Buffer.from(STATUS.repeat(perConn))], 120_000)));
    const pipedMs = performance.now() - t0;
    const pipedReplies = piped.reduce((a, r) => a + r.replies, 0);
    v.fig('pipelined', `${pipedReplies}/${16 * perConn} in ${(pipedMs / 1000).toFixed(1)}s`);

    const status = await prober.stop();
    const peak = rssMax.stop();
    // Back to baseline: wait for the fds to settle (closing is asynchronous).
    ctx.log('Back to baseline: wait for the fds to settle (closing is asynchronous).');
    const settle = Date.now() + 10_000;
    let fds1 = fdsOf(pid);
    while (fds1 !== fds0 && Date.now() < settle) {
      await sleep(200);
      fds1 = fdsOf(pid);
    }
    const rss1 = rssOf(pid);
    const polls = pollLateness(box.log(), since);

    v.fig('status', `n=${status.count} failed=${status.failed} p50=${status.p50.toFixed(0)}ms max=${status.max.toFixed(0)}ms`);
    v.fig('polls', `n=${polls.samples} late_p99=${polls.p99LateMs}ms late_max=${polls.maxLateMs}ms`);
    v.fig('fds', `${fds0}->${fds1}`);
    v.fig('rss', `${mib(rss0)}->peak ${mib(peak)}->${mib(rss1)}`);
    v.fig('garbage_closed', garbage.length);

    v.require(status.failed === 0, `status failed ${status.failed} times during the abuse (first: ${prober.failures[0]})`);
    v.require(status.max <= 1000, `status took up to ${status.max.toFixed(0)} ms (allowed 1000)`);
    for (const [what, r] of [['idle', idleStatus], ['half-open', v.figures['status_with_half_open']], ['slow', v.figures['status_with_slow']]] as const) {
      v.require(String(r).startsWith('ok'), `status beside ${what} clients: ${r}`);
    }
    v.require(polls.samples >= 10, `only ${polls.samples} memory samples logged`);
    v.require(polls.maxLateMs <= 250, `a memory poll came ${polls.maxLateMs} ms late (allowed 250)`);
    v.require(pipedReplies === 16 * perConn, `${pipedReplies} of ${16 * perConn} pipelined requests answered`);
    v.require(badJson.replies >= 1, 'no bad_json reply');
    v.require(hundred.accepted < 100 * MIB, 'a 100 MiB line was read to the end instead of refused');
    v.require(fds0 !== null && fds1 === fds0, `daemon fds ${fds0} -> ${fds1} (not back to baseline)`);
    v.require(rss0 !== null && rss1 !== null && rss1 - rss0 <= 10 * MIB, `daemon RSS ${mib(rss0)} -> ${mib(rss1)} (allowed +10 MiB)`);
    return v.result();
  },
};
