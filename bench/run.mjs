// `npm run bench`: every benchmark in turn, each printing its own table, after the facts that make
// figures comparable (date, machine, Node version, NODE_EXTRA_CA_CERTS). Record results in
// BENCHMARKS.md with this header.
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = [
  ['/proc scan', ['--expose-gc', `${here}proc-scan.mjs`]],
  ['status round trip vs pm2 jlist', [`${here}status.mjs`]],
  ['daemon memory', [`${here}daemon-rss.mjs`]],
  ['leak reaction', [`${here}leak.mjs`]],
  ['worker output throughput and status latency', [`${here}worker-output.mjs`]],
  ['control clients: flood, non-readers, idle', ['--expose-gc', `${here}control-flood.mjs`]],
];

console.log(`date: ${new Date().toISOString()}`);
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`);
console.log(`node: ${process.version}; NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? `set (${process.env.NODE_EXTRA_CA_CERTS})` : 'not set'}`);
let failed = 0;
for (const [name, args] of benches) {
  console.log(`\n## ${name}`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`(${name} failed: exit ${r.status ?? r.signal})`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
