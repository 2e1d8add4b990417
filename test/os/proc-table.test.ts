import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { endianness, freemem, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ProcTable } from '../../src/os/proc-table.js';
import { killGroup, uniqueInstanceId, waitFor } from './live-processes.js';

interface FakeStat {
  pid: number;
  comm?: string;
  state?: string;
  ppid?: number;
  pgid?: number;
  sid?: number;
  startTimeTicks?: number;
  rssPages?: number;
  flags?: number;
  utime?: number;
  stime?: number;
  cutime?: number;
  cstime?: number;
}

/** A stat line with all 52 fields, in the kernel's format. */
function statLine(s: FakeStat): string {
  const after = [
    s.state ?? 'S', s.ppid ?? 1, s.pgid ?? s.pid, s.sid ?? s.pid, 0, -1, s.flags ?? 4194560, 100, 0, 0, 0, s.utime ?? 5, s.stime ?? 3, s.cutime ?? 0, s.cstime ?? 0, 20, 0, 1, 0,
    s.startTimeTicks ?? 1000, 12345678, s.rssPages ?? 10, '18446744073709551615',
  ];
  while (after.length < 50) after.push(0);
  return `${s.pid} (${s.comm ?? 'fake'}) ${after.join(' ')}\n`;
}

function fakeProc(): { root: string; addProcess(s: FakeStat, files?: Record<string, string | Buffer>): void; write(rel: string, data: string | Buffer): void } {
  const root = mkdtempSync(join(tmpdir(), 'autopilotd-fakeproc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const write = (rel: string, data: string | Buffer): void => {
    const path = join(root, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, data);
  };
  return {
    root,
    write,
    addProcess(s, files = {}) {
      write(`${s.pid}/stat`, statLine(s));
      for (const [name, data] of Object.entries(files)) write(`${s.pid}/${name}`, data);
    },
  };
}

function auxv(pairs: Array<[number, number]>): Buffer {
  const buf = Buffer.alloc((pairs.length + 1) * 16);
  pairs.forEach(([key, value], i) => {
    if (endianness() === 'LE') {
      buf.writeBigUInt64LE(BigInt(key), i * 16);
      buf.writeBigUInt64LE(BigInt(value), i * 16 + 8);
    } else {
      buf.writeBigUInt64BE(BigInt(key), i * 16);
      buf.writeBigUInt64BE(BigInt(value), i * 16 + 8);
    }
  });
  return buf; // ends with the all-zero AT_NULL pair
}

describe('ProcTable on a fake /proc', () => {
  test('parses a comm holding spaces and parentheses by the last closing parenthesis', () => {
    const fake = fakeProc();
    fake.addProcess({ pid: 42, comm: 'a) b (c', state: 'R', ppid: 7, pgid: 40, sid: 30, startTimeTicks: 98765, rssPages: 3, utime: 700, stime: 55, cutime: 20, cstime: 4 });
    fake.addProcess({ pid: 43, comm: ') (', ppid: 42 });
    const table = new ProcTable(fake.root);
    assert.deepEqual(table.read(42), {
      pid: 42, ppid: 7, pgid: 40, sid: 30, state: 'R', comm: 'a) b (c', startTimeTicks: 98765, rssBytes: 3 * table.pageBytes, kernelThread: false,
      cpuTicks: 755, childCpuTicks: 24, threads: 1,
    });
    assert.equal(table.read(43)?.comm, ') (');
    assert.equal(table.read(43)?.ppid, 42);
  });

  test('lists only numeric entries and skips a process whose files vanished after the directory listing', () => {
    const fake = fakeProc();
    fake.addProcess({ pid: 1 });
    fake.addProcess({ pid: 200 });
    mkdirSync(join(fake.root, '201')); // listed, but its stat is already gone
    fake.write('self/status', 'Uid:\t0\t0\t0\t0\n');
    fake.write('meminfo', 'MemTotal: 1 kB\n');
    const table = new ProcTable(fake.root);
    assert.deepEqual(table.scan().map((p) => p.pid).sort((a, b) => a - b), [1, 200]);
    assert.equal(table.read(201), null);
    assert.equal(table.read(999), null);
    assert.equal(table.uidOf(201), null);
    assert.equal(table.hasEnvMarker(201, 'AUTOPILOTD_INSTANCE', 'x'), null);
  });

  test('throws naming the path when a stat line cannot be parsed', () => {
    const fake = fakeProc();
    const cases: Record<number, string> = {
      50: '50 no parentheses S 1 50 50\n',
      51: '51 (cut) S 1 51\n',
      52: '52 (word) S 1 abc 52 0 -1\n',
      53: '',
      54: '99 (other pid) S 1 54 54 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1 0\n',
    };
    for (const [pid, text] of Object.entries(cases)) fake.write(`${pid}/stat`, text);
    const table = new ProcTable(fake.root);
    for (const pid of Object.keys(cases)) {
      assert.throws(() => table.read(Number(pid)), new RegExp(`malformed ${fake.root}/${pid}/stat`), `pid ${pid}`);
    }
    assert.throws(() => table.scan(), /malformed/);
  });

  test('reads the page size from self/auxv, and uses 4096 when the file is missing', () => {
    const withAuxv = fakeProc();
    withAuxv.write('self/auxv', auxv([[33, 0x7fff0000], [16, 0xbfebfbff], [6, 16384], [17, 100]]));
    withAuxv.addProcess({ pid: 5, rssPages: 10 });
    const table = new ProcTable(withAuxv.root);
    assert.equal(table.pageBytes, 16384);
    assert.equal(table.read(5)?.rssBytes, 10 * 16384);

    const without = fakeProc();
    without.addProcess({ pid: 5, rssPages: 10 });
    assert.equal(new ProcTable(without.root).read(5)?.rssBytes, 10 * 4096);
  });

  test('reads the clock tick rate from self/auxv, and uses 100 when the file is missing', () => {
    const withAuxv = fakeProc();
    withAuxv.write('self/auxv', auxv([[6, 4096], [17, 250]]));
    assert.equal(new ProcTable(withAuxv.root).clockTicksPerSecond, 250);
    assert.equal(new ProcTable(fakeProc().root).clockTicksPerSecond, 100);
  });

  test('reads the real uid, not the effective one, from status', () => {
    const fake = fakeProc();
    fake.addProcess({ pid: 9 }, { status: 'Name:\tx\nUmask:\t0022\nState:\tS\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n' });
    fake.addProcess({ pid: 10 }, { status: 'Name:\tx\n' });
    const table = new ProcTable(fake.root);
    assert.equal(table.uidOf(9), 1000);
    assert.throws(() => table.uidOf(10), /malformed .*\/10\/status: no "Uid:" line/);
  });

  // This machine has no swap (free shows 0): the kernel shows VmSwap 0 for every process, so a
  // swapped-out process can be shown only by a fake status.
  test('reads VmSwap from status in bytes; 0 where the status has no VmSwap line; null when the process is gone', () => {
    const fake = fakeProc();
    const status = (swap: string): string => `Name:\tnode\nState:\tS (sleeping)\nVmRSS:\t  204800 kB\n${swap}Threads:\t11\n`;
    fake.addProcess({ pid: 20 }, { status: status('VmSwap:\t 7340032 kB\n') }); // 7 GiB, as in the Claude Code reports
    fake.addProcess({ pid: 21 }, { status: status('VmSwap:\t       0 kB\n') });
    fake.addProcess({ pid: 22 }, { status: 'Name:\tkthreadd\nState:\tS (sleeping)\nThreads:\t1\n' }); // kernel thread or zombie: no Vm lines
    fake.addProcess({ pid: 23 }, { status: status('VmSwap:\t  abc kB\n') });
    fake.addProcess({ pid: 24 }, { status: 'Name:\tx\nVmSwap:\t12 kB\n' }); // the last line
    const table = new ProcTable(fake.root);
    assert.equal(table.swapBytes(20), 7 * 1024 ** 3);
    assert.equal(table.swapBytes(21), 0);
    assert.equal(table.swapBytes(22), 0);
    assert.throws(() => table.swapBytes(23), /malformed .*\/23\/status: VmSwap is not a number/);
    assert.equal(table.swapBytes(24), 12 * 1024);
    assert.equal(table.swapBytes(999), null);
    // withSwap: each process with its swap; one gone meanwhile keeps 0 (it was sampled a member).
    const procs = [table.read(20)!, table.read(21)!, { ...table.read(21)!, pid: 999 }];
    assert.deepEqual(table.withSwap(procs).map((p) => [p.pid, p.swapBytes, p.rssBytes]), [
      [20, 7 * 1024 ** 3, procs[0]!.rssBytes], [21, 0, procs[1]!.rssBytes], [999, 0, procs[1]!.rssBytes],
    ]);
  });

  test('a VmSwap line left over from a longer earlier read is not taken for this one', () => {
    const fake = fakeProc();
    fake.addProcess({ pid: 30 }, { status: `Name:\tbig\n${'Pad:\t0\n'.repeat(50)}VmSwap:\t 1024 kB\n` });
    fake.addProcess({ pid: 31 }, { status: 'Name:\tsmall\n' });
    const table = new ProcTable(fake.root);
    assert.equal(table.swapBytes(30), 1024 * 1024);
    assert.equal(table.swapBytes(31), 0, 'the shared buffer still holds the first file past the second');
  });

  test('matches the environment marker only as a whole entry', () => {
    const fake = fakeProc();
    const env = (...entries: string[]): string => entries.map((e) => `${e}\0`).join('');
    fake.addProcess({ pid: 1 }, { environ: env('PATH=/bin', 'AUTOPILOTD_INSTANCE=abc', 'HOME=/') });
    fake.addProcess({ pid: 2 }, { environ: env('AUTOPILOTD_INSTANCE=abcd', 'XAUTOPILOTD_INSTANCE=abc', 'AUTOPILOTD_INSTANCE=ab') });
    fake.addProcess({ pid: 3 }, { environ: 'PATH=/bin\0AUTOPILOTD_INSTANCE=abc' }); // last entry without its NUL
    fake.addProcess({ pid: 4 }, { environ: 'AUTOPILOTD_INSTANCE=abc\0' }); // first entry
    fake.addProcess({ pid: 5 }, { environ: '' }); // kernel threads and zombies have none
    const table = new ProcTable(fake.root);
    assert.equal(table.hasEnvMarker(1, 'AUTOPILOTD_INSTANCE', 'abc'), true);
    assert.equal(table.hasEnvMarker(2, 'AUTOPILOTD_INSTANCE', 'abc'), false);
    assert.equal(table.hasEnvMarker(3, 'AUTOPILOTD_INSTANCE', 'abc'), true);
    assert.equal(table.hasEnvMarker(4, 'AUTOPILOTD_INSTANCE', 'abc'), true);
    assert.equal(table.hasEnvMarker(5, 'AUTOPILOTD_INSTANCE', 'abc'), false);
    assert.equal(table.hasEnvMarker(6, 'AUTOPILOTD_INSTANCE', 'abc'), null);
  });

  test('envMarker tells an empty environ (inside execve, or no memory) from one without the marker', () => {
    const fake = fakeProc();
    fake.addProcess({ pid: 1 }, { environ: 'AUTOPILOTD_INSTANCE=abc\0' });
    fake.addProcess({ pid: 2 }, { environ: 'PATH=/bin\0' });
    fake.addProcess({ pid: 3 }, { environ: '' });
    const table = new ProcTable(fake.root);
    assert.deepEqual([1, 2, 3, 4].map((pid) => table.envMarker(pid, 'AUTOPILOTD_INSTANCE', 'abc')), ['present', 'absent', 'empty', null]);
  });

  test('tells a kernel thread by PF_KTHREAD in the stat flags', () => {
    const fake = fakeProc();
    fake.addProcess({ pid: 2, ppid: 0, pgid: 0, sid: 0, flags: 0x208040 }); // kthreadd, as the kernel shows it
    fake.addProcess({ pid: 3, ppid: 0, pgid: 0, sid: 0, flags: 0x400100 }); // a process whose session is outside the pid namespace
    const table = new ProcTable(fake.root);
    assert.equal(table.read(2)?.kernelThread, true);
    assert.equal(table.read(3)?.kernelThread, false);
  });

  test('finds the environment marker in an environ larger than the read buffer, at any offset around its size', () => {
    const fake = fakeProc();
    const table = new ProcTable(fake.root);
    const bufferBytes = 64 * 1024;
    // Every start offset around the end of the first and second reads, wherever exactly they fall.
    const offsets: number[] = [];
    for (let k = 1; k <= 2; k++) for (let at = k * bufferBytes - 80; at <= k * bufferBytes + 20; at++) offsets.push(at);
    for (const offset of offsets) {
      const pad = `PAD=${'x'.repeat(offset - 5)}\0`; // so the marker starts at byte `offset`
      fake.addProcess({ pid: 7 }, { environ: `${pad}AUTOPILOTD_INSTANCE=boundary-case\0TAIL=${'y'.repeat(bufferBytes)}\0` });
      assert.equal(table.hasEnvMarker(7, 'AUTOPILOTD_INSTANCE', 'boundary-case'), true, `marker at ${offset}`);
      assert.equal(table.hasEnvMarker(7, 'AUTOPILOTD_INSTANCE', 'boundary'), false, `prefix at ${offset}`);
    }
  });

  test('reads an environ of up to 8 MiB whole, with the marker last; a larger one is not readable', () => {
    const fake = fakeProc();
    const table = new ProcTable(fake.root);
    for (const bytes of [200_000, 1_600_000, 6_000_000]) {
      fake.addProcess({ pid: 8 }, { environ: `PAD=${'x'.repeat(bytes)}\0AUTOPILOTD_INSTANCE=last\0` });
      assert.equal(table.envMarker(8, 'AUTOPILOTD_INSTANCE', 'last'), 'present', `${bytes} bytes`);
      assert.equal(table.envMarker(8, 'AUTOPILOTD_INSTANCE', 'other'), 'absent', `${bytes} bytes`);
    }
    fake.addProcess({ pid: 8 }, { environ: `PAD=${'x'.repeat(9 * 1024 * 1024)}\0AUTOPILOTD_INSTANCE=last\0` });
    assert.equal(table.envMarker(8, 'AUTOPILOTD_INSTANCE', 'last'), null);
  });

  test('reports no memory pressure when the kernel has no PSI file', () => {
    const fake = fakeProc();
    assert.equal(new ProcTable(fake.root).pressure(), null);
  });

  test('parses memory pressure and meminfo in bytes', () => {
    const fake = fakeProc();
    fake.write('pressure/memory', 'some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=4.25 avg60=1.00 avg300=0.00 total=45\n');
    fake.write('meminfo', 'MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\nSwapTotal:       4194300 kB\n');
    const table = new ProcTable(fake.root);
    assert.deepEqual(table.pressure(), { someAvg10: 12.5, fullAvg10: 4.25 });
    assert.deepEqual(table.memInfo(), { totalBytes: 16000000 * 1024, availableBytes: 8000000 * 1024, swapTotalBytes: 4194300 * 1024 });
  });

  test('estimates available memory from free plus caches on kernels without MemAvailable', () => {
    const fake = fakeProc();
    fake.write('meminfo', 'MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n');
    assert.deepEqual(new ProcTable(fake.root).memInfo(), { totalBytes: 1000 * 1024, availableBytes: 420 * 1024, swapTotalBytes: 0 });
  });

  test('throws naming the file when meminfo or pressure lacks its fields', () => {
    const fake = fakeProc();
    fake.write('meminfo', 'MemFree: 100 kB\n');
    fake.write('pressure/memory', 'some avg10=1.00 avg60=0.00 avg300=0.00 total=1\n');
    const table = new ProcTable(fake.root);
    assert.throws(() => table.memInfo(), /malformed .*meminfo: no MemTotal/);
    assert.throws(() => table.pressure(), /malformed .*pressure\/memory/);
  });
});

describe('ProcTable on the real /proc', () => {
  const table = new ProcTable();

  test('finds this process with its real parent, group, session and a resident size near Node’s own figure', () => {
    const me = table.read(process.pid);
    assert.ok(me, 'this process is in /proc');
    assert.equal(me.ppid, process.ppid);
    assert.equal(me.comm, basename(process.execPath).slice(0, 15));
    const [pgid, sid] = execFileSync('ps', ['-o', 'pgid=,sid=', '-p', String(process.pid)], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
    assert.equal(me.pgid, pgid);
    assert.equal(me.sid, sid);
    const nodeRss = process.memoryUsage().rss;
    assert.ok(me.rssBytes > nodeRss * 0.8 && me.rssBytes < nodeRss * 1.25, `rss ${me.rssBytes} vs Node's ${nodeRss}`);
    assert.ok(table.scan().some((p) => p.pid === process.pid));
    assert.equal(me.kernelThread, false);
  });

  test('marks kthreadd and its kernel threads, when this pid namespace shows them', (t) => {
    const kthreadd = table.read(2);
    if (kthreadd?.comm !== 'kthreadd') return t.skip('kernel threads are not visible here (a pid namespace)');
    assert.equal(kthreadd.kernelThread, true);
    // Not every child: a usermode helper (modprobe, ...) is forked by kthreadd and then exec's.
    const workers = table.scan().filter((p) => p.ppid === 2 && p.comm.startsWith('kworker/'));
    assert.ok(workers.length > 0 && workers.every((p) => p.kernelThread), 'every kworker is a kernel thread');
  });

  test('childrenOf lists the children of every thread, a thousand of them too (more than one read), and null once the process is gone', async () => {
    const count = 1000;
    const sh = spawn('sh', ['-c', `i=0; while [ $i -lt ${count} ]; do sleep 1000 & i=$((i+1)); done; echo ready; exec sleep 1000`], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = once(sh, 'exit');
    try {
      await once(sh.stdout!, 'data');
      const kids = table.childrenOf(sh.pid!);
      assert.ok(kids !== null && kids.whole);
      assert.equal(new Set(kids.pids).size, count);
      assert.ok(kids.pids.every((pid) => table.read(pid)?.ppid === sh.pid), 'each listed pid is its child');
      assert.deepEqual(table.childrenOf(sh.pid!, true), kids, 'one thread: its main thread has them all');
      assert.deepEqual(table.childrenOf(kids.pids[0]!), { pids: [], whole: true });
      // This process has several threads (libuv's, V8's); its child is listed under the one that forked it.
      assert.ok((table.read(process.pid)?.threads ?? 0) > 1);
      assert.ok(table.childrenOf(process.pid)?.pids.includes(sh.pid!));
    } finally {
      killGroup(sh.pid!);
      await exited;
    }
    assert.equal(table.childrenOf(sh.pid!), null);
  });

  test('uses the page size the kernel reports', () => {
    assert.equal(table.pageBytes, Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' })));
  });

  test('uses the clock tick rate the kernel reports, and sees this process use CPU', () => {
    assert.equal(table.clockTicksPerSecond, Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })));
    // Loading the test runner alone takes more than one tick of CPU.
    assert.ok((table.read(process.pid)?.cpuTicks ?? 0) > 0);
  });

  test('sees a spawned child with its uid and marker, and reports it gone once it was reaped', async () => {
    const id = uniqueInstanceId('proc-table');
    const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore', env: { ...process.env, AUTOPILOTD_INSTANCE: id } });
    const pid = child.pid!;
    const exited = once(child, 'exit');
    try {
      const info = table.read(pid);
      assert.ok(info, 'child is in /proc');
      assert.equal(info.ppid, process.pid);
      assert.equal(info.pgid, pid, 'detached: its own group');
      assert.equal(info.sid, pid, 'detached: its own session');
      assert.equal(info.comm, 'sleep');
      // Right after exec the new image may not have faulted a page in yet.
      await waitFor(() => (table.read(pid)?.rssBytes ?? 0) > 0, 'the child to have resident pages');
      const me = table.read(process.pid);
      assert.ok(me && info.startTimeTicks >= me.startTimeTicks, 'started after this process');
      assert.ok(table.scan().some((p) => p.pid === pid));
      assert.equal(table.uidOf(pid), process.getuid!());
      assert.equal(table.hasEnvMarker(pid, 'AUTOPILOTD_INSTANCE', id), true);
      assert.equal(table.hasEnvMarker(pid, 'AUTOPILOTD_INSTANCE', `${id}-other`), false);
      assert.equal(table.hasEnvMarker(process.pid, 'AUTOPILOTD_INSTANCE', id), false);
    } finally {
      killGroup(pid);
      await exited;
    }
    assert.equal(table.read(pid), null);
    assert.equal(table.uidOf(pid), null);
    assert.equal(table.hasEnvMarker(pid, 'AUTOPILOTD_INSTANCE', id), null);
    assert.ok(!table.scan().some((p) => p.pid === pid));
  });

  test('reads VmSwap as the kernel shows it: 0 for this process and a child on this machine, which has no swap; 0 for a zombie and a kernel thread', async (t) => {
    const swapTotal = Number(/^SwapTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
    const kernelSays = (pid: number): number => Number(/^VmSwap:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    assert.equal(table.swapBytes(process.pid), kernelSays(process.pid));
    // The sh execs sleep after starting `sleep 0`, which exits and is never waited for: a zombie.
    const child = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 1000'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = once(child, 'exit');
    try {
      const [line] = await once(child.stdout!, 'data') as [Buffer];
      const zombie = Number(line.toString().trim());
      await waitFor(() => table.read(zombie)?.state === 'Z' && table.read(child.pid!)?.comm === 'sleep', 'the zombie and the exec');
      assert.equal(table.swapBytes(child.pid!), kernelSays(child.pid!));
      assert.equal(table.swapBytes(zombie), 0, 'a zombie has no memory and no VmSwap line');
      if (swapTotal === 0) {
        assert.equal(table.swapBytes(process.pid), 0);
        assert.equal(table.swapBytes(child.pid!), 0);
      } else {
        t.diagnostic('this machine has swap: VmSwap compared with the kernel\'s figure only');
      }
    } finally {
      killGroup(child.pid!);
      await exited;
    }
    assert.equal(table.swapBytes(child.pid!), null, 'gone');
    if (table.read(2)?.comm === 'kthreadd') assert.equal(table.swapBytes(2), 0, 'a kernel thread has no VmSwap line');
  });

  test('finds the marker at the end of a real environ of 1.5 MiB', async () => {
    const id = uniqueInstanceId('proc-table-large');
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (let i = 0; i < 24; i++) env[`PAD_${i}`] = 'x'.repeat(65_536);
    env.AUTOPILOTD_INSTANCE = id; // last, well past the first 64 KiB
    const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore', env });
    const exited = once(child, 'exit');
    try {
      await waitFor(() => table.read(child.pid!)?.comm === 'sleep', 'the child to exec sleep');
      assert.equal(table.envMarker(child.pid!, 'AUTOPILOTD_INSTANCE', id), 'present');
    } finally {
      killGroup(child.pid!);
      await exited;
    }
  });

  test('reports total memory as the kernel does and available memory within it', () => {
    const mem = table.memInfo();
    assert.equal(mem.totalBytes, totalmem());
    assert.ok(mem.availableBytes > 0 && mem.availableBytes <= mem.totalBytes);
    // os.freemem() reads MemAvailable too, a moment apart.
    assert.ok(Math.abs(mem.availableBytes - freemem()) < mem.totalBytes * 0.05, `${mem.availableBytes} vs ${freemem()}`);
  });

  test('reads memory pressure as percentages when the kernel has PSI', (t) => {
    if (!existsSync('/proc/pressure/memory')) {
      assert.equal(table.pressure(), null);
      t.skip('kernel without PSI');
      return;
    }
    const psi = table.pressure();
    assert.ok(psi);
    for (const v of [psi.someAvg10, psi.fullAvg10]) assert.ok(v >= 0 && v <= 100, `${v}`);
    assert.ok(psi.fullAvg10 <= psi.someAvg10);
  });
});

test('cmdline reads the words of a live process (status tree listing), cut at maxBytes; null once it is gone', async () => {
  const script = 'setInterval(() => {}, 1e6)';
  const child = spawn(process.execPath, ['-e', script, 'a b'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const table = new ProcTable();
  try {
    assert.deepEqual(table.cmdline(child.pid!), [process.execPath, '-e', script, 'a b'], 'a word with a space stays one word');
    assert.deepEqual(table.cmdline(child.pid!, process.execPath.length + 2), [process.execPath, '-'], 'cut');
  } finally {
    child.kill('SIGKILL');
  }
  await once(child, 'exit');
  assert.equal(table.cmdline(child.pid!), null);
});
