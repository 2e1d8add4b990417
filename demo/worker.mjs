#!/usr/bin/env node
// A stand-in for an autonomous coding agent: it works, leaks memory, starts a helper process (as
// Claude Code starts MCP servers) that leaks too, and crashes now and then. `npm run demo`
// supervises it: the first two generations crash (the crash loop and its backoff), the third lives
// until its tree passes [memory].worker_max_bytes (the memory guard, cause=memory).

import { spawn } from 'node:child_process';

const generation = Number(process.env.AUTOPILOTD_GENERATION ?? '1');
// Early generations crash after ~3 s so the demo shows the backoff quickly; later ones live longer.
const crashAfterMs = generation <= 2 ? 3000 : 20000;
const leak = [];
let task = 0;

// The helper grows 8 MiB every 500 ms (touched, so it counts in RSS), up to 480 MiB: the kind of
// leak in a child process that only the tree's figure shows.
const HELPER = 'const held = []; setInterval(() => { if (held.length < 60) held.push(Buffer.alloc(8 << 20, 1)); }, 500);';
const helper = spawn(process.execPath, ['-e', HELPER], { stdio: 'ignore' });
console.log(`agent gen ${generation}: started (pid ${process.pid}), helper pid ${helper.pid}`);

const work = setInterval(() => {
  task += 1;
  // Leak 4 MiB per tick, touched so it counts in RSS.
  leak.push(Buffer.alloc(4 * 1024 * 1024, task));
  const rssMiB = (process.memoryUsage().rss / 1048576).toFixed(0);
  console.log(`agent gen ${generation}: task ${task} done, rss ${rssMiB} MiB`);
}, 700);

setTimeout(() => {
  console.error(`agent gen ${generation}: unexpected error, crashing`);
  process.exit(1);
}, crashAfterMs);

process.on('SIGTERM', () => {
  console.log(`agent gen ${generation}: SIGTERM, finishing up`);
  clearInterval(work);
  helper.kill('SIGTERM');
  process.exit(0);
});
