// closeInheritedFds in a real process: it closes what was inherited without O_CLOEXEC and leaves
// Node's own descriptors, the ones asked for, and the low ones Node marked close-on-exec itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../src/os/inherited-fds.js', import.meta.url));

/** Runs `closeInheritedFds(keep)` in a fresh node with /dev/null open at `fds`; returns what it reports. */
async function runWith(fds: number[], keep: number[]): Promise<{ closed: number[]; open: number[]; cloexec: number[] }> {
  const devNull = openSync('/dev/null', 'r');
  const stdio: StdioOptions = ['ignore', 'pipe', 'inherit'];
  for (let fd = 3; fd <= Math.max(...fds); fd += 1) stdio.push(fds.includes(fd) ? devNull : 'ignore');
  const script = `
    const { readdirSync, readFileSync } = require('node:fs');
    const { closeInheritedFds } = await import(${JSON.stringify(MODULE)});
    const mine = ${JSON.stringify(fds)};
    const cloexec = mine.filter((fd) => (parseInt(/flags:\\s*([0-7]+)/.exec(readFileSync('/proc/self/fdinfo/' + fd, 'utf8'))[1], 8) & 0o2000000) !== 0);
    // Only ours: the test runner may pass on descriptors of its own (a CI shell's, say).
    const closed = closeInheritedFds(new Set(${JSON.stringify(keep)})).filter((fd) => mine.includes(fd));
    const open = readdirSync('/proc/self/fd').map(Number).filter((fd) => mine.includes(fd));
    // Node's own descriptors were left alone: its event loop, thread pool and child spawning work.
    await require('node:fs').promises.readFile('/proc/self/stat');
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (require('node:child_process').spawnSync('true').status !== 0) throw new Error('cannot spawn after closing');
    process.stdout.write(JSON.stringify({ closed, open, cloexec }));`;
  const child = spawn(process.execPath, ['--input-type=commonjs', '-e', `(async () => {${script}})()`], { stdio });
  closeSync(devNull);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, out);
  return JSON.parse(out) as { closed: number[]; open: number[]; cloexec: number[] };
}

test('inherited fds without O_CLOEXEC are closed, except those kept; Node marked the low ones itself, and keeps working', async () => {
  // 5 and 12 are below 16, which Node (libuv's uv_disable_stdio_inheritance) marks O_CLOEXEC;
  // 16..19 are closed, so it stops there and 20, 40, 300 arrive as the shell left them.
  const report = await runWith([5, 12, 20, 40, 300], [40]);
  assert.deepEqual(report.cloexec, [5, 12], 'Node marks only the low ones');
  assert.deepEqual(report.closed.sort((a, b) => a - b), [20, 300]);
  assert.deepEqual(report.open.sort((a, b) => a - b), [5, 12, 40]);
});
