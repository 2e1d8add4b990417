// Bundles the CLI into dist/bin so `autopilotd status` starts fast. CommonJS, because Node 20's
// ESM loader costs ~5 ms more per start (BENCHMARKS.md, "status round trip"). Two bundles: the
// client (every command) and the daemon, which only `start` loads.
// Built beside dist/bin and swapped in, so a test or daemon reading dist/bin never sees it half gone.
import { build } from 'esbuild';
import { chmodSync, renameSync, rmSync } from 'node:fs';

const next = `dist/bin.next-${process.pid}`;
const old = `dist/bin.old-${process.pid}`;
// import.meta.url has no CommonJS equivalent esbuild fills in: each bundle defines it from its own
// file (src/os/native.ts finds the native helper from there).
const importMetaUrl = "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;";
const common = {
  bundle: true, format: 'cjs', platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning',
  // Node 20 has \p{...} in regexes. Lowered to `new RegExp()`, valibot's unused EMOJI_REGEX is no
  // longer dropped, and building it at load reads ICU's property tables (~0.25 MiB of RSS).
  supported: { 'regexp-unicode-property-escapes': true },
  define: { 'import.meta.url': '__importMetaUrl' },
};

/**
 * The client reaches `start` through one dynamic import, resolved at run time to daemon.cjs, and
 * made a require(): an import() would load Node's ESM loader into the daemon (~0.8 MiB of RSS).
 */
const startAsSibling = {
  name: 'start-as-sibling',
  setup(b) {
    b.onResolve({ filter: /^\.\/daemon-main\.js$/ }, () => ({ path: './daemon.cjs', external: true }));
  },
};
/** Run as a program (`node daemon.cjs start ...`, by `start`), the daemon bundle runs `start`. */
const runWhenMain = 'if (require.main === module) void module.exports.runAsProgram();';

await Promise.all([
  build({
    ...common, entryPoints: ['src/cli/main.ts'], outfile: `${next}/autopilotd.cjs`, banner: { js: `#!/usr/bin/env node\n${importMetaUrl}` },
    plugins: [startAsSibling], supported: { ...common.supported, 'dynamic-import': false },
  }),
  build({ ...common, entryPoints: ['src/cli/daemon-main.ts'], outfile: `${next}/daemon.cjs`, banner: { js: importMetaUrl }, footer: { js: runWhenMain } }),
]);
chmodSync(`${next}/autopilotd.cjs`, 0o755);
try {
  renameSync('dist/bin', old);
} catch (err) {
  if (err.code !== 'ENOENT') throw err; // first build: nothing to move aside
}
renameSync(next, 'dist/bin');
rmSync(old, { recursive: true, force: true });
