// Bundles the CLI into dist/bin so `autopilotd status` starts fast: one file for the client path,
// the daemon split into a chunk that only `start` loads (dynamic import).
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';

rmSync('dist/bin', { recursive: true, force: true });

await build({
  entryPoints: { autopilotd: 'src/cli/main.ts' },
  outdir: 'dist/bin',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync('dist/bin/autopilotd.js', 0o755);
