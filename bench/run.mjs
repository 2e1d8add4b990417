// `npm run bench`: every benchmark in turn, each printing its own table, after the facts that make
// figures comparable (date, machine, Node version, NODE_EXTRA_CA_CERTS, load average). Record
// results in BENCHMARKS.md with this header. `node bench/run.mjs NAME...` runs only the benches
// whose file name (without .mjs) is given, e.g. `node bench/run.mjs idle-cpu restart-latency`.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = [
  ['/proc scan', ['--expose-gc', `${here}proc-scan.mjs`]],
  ['tree sample for trees of 1, 20, 200 (#18)', [`${here}tree-sample.mjs`]],
  ['status and metrics round trips vs node -e 0, pm2 jlist (#19)', [`${here}status.mjs`]],
  ['scrape cost: daemon CPU per 1000 metrics requests, RSS with 10 event subscribers (#19)', [`${here}scrape-cost.mjs`]],
  ['daemon memory', [`${here}daemon-rss.mjs`]],
  ['idle CPU vs PM2, supervisord, systemd, idle node (#18)', [`${here}idle-cpu.mjs`]],
  ['exit -> new worker vs PM2, systemd, supervisord (#18)', [`${here}restart-latency.mjs`]],
  ['exit -> new worker, with 1000 extra processes on the machine (#18)', [`${here}restart-latency.mjs`, '1000']],
  ['leak reaction', [`${here}leak.mjs`]],
  ['worker output throughput and status latency', [`${here}worker-output.mjs`]],
  ['control clients: flood, non-readers, idle', ['--expose-gc', `${here}control-flood.mjs`]],
];

console.log(`date: ${new Date().toISOString()}`);
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`);
console.log(`node: ${process.version}; NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? `set (${process.env.NODE_EXTRA_CA_CERTS})` : 'not set'}`);
console.log(`load average: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const only = process.argv.slice(2);
const fileOf = (args) => args.find((a) => a.endsWith('.mjs')).slice(here.length).replace(/\.mjs$/, '');
const unknown = only.filter((name) => !benches.some(([, args]) => fileOf(args) === name));
if (unknown.length > 0) throw new Error(`no such bench: ${unknown.join(', ')} (known: ${benches.map(([, a]) => fileOf(a)).join(', ')})`);
let failed = 0;
for (const [name, args] of benches.filter(([, a]) => only.length === 0 || only.includes(fileOf(a)))) {
  console.log(`\n## ${name}`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`(${name} failed: exit ${r.status ?? r.signal})`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
