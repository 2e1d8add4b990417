// Bundles the CLI into dist/bin so `autopilotd status` starts fast: one file for the client path,
// the daemon split into a chunk that only `start` loads (dynamic import).
// Built beside dist/bin and swapped in, so a test or daemon reading dist/bin never sees it half gone.
import { build } from 'esbuild';
import { chmodSync, renameSync, rmSync } from 'node:fs';

const next = `dist/bin.next-${process.pid}`;
const old = `dist/bin.old-${process.pid}`;
await build({
  entryPoints: { autopilotd: 'src/cli/main.ts' },
  outdir: next,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync(`${next}/autopilotd.js`, 0o755);
try {
  renameSync('dist/bin', old);
} catch (err) {
  if (err.code !== 'ENOENT') throw err; // first build: nothing to move aside
}
renameSync(next, 'dist/bin');
rmSync(old, { recursive: true, force: true });
