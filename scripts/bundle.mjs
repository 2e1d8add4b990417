// Bundles the CLI into dist/bin so `autopilotd status` starts fast. CommonJS, because Node 20's
// ESM loader costs ~5 ms more per start (BENCHMARKS.md, "status round trip"). One bundle per
// command module, because compiling code costs even when it never runs: the entry (command line,
// help) loads only the one its command needs, so `status` never reads the install-service or
// start code (#19). The daemon is one more, which only `start` loads. exit-codes.cjs is shared
// by all, so that `instanceof CliFailure` in the entry holds for an error from any of them.
// Built beside dist/bin and swapped in, so a test or daemon reading dist/bin never sees it half gone.
import { build } from 'esbuild';
import { chmodSync, renameSync, rmSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';

const next = `dist/bin.next-${process.pid}`;
const old = `dist/bin.old-${process.pid}`;
// import.meta.url has no CommonJS equivalent esbuild fills in: each bundle defines it from its own
// file (src/os/native.ts finds the native helper from there). A getter, made at first use: the
// first pathToFileURL of a process builds the URL machinery, ~1.3 ms that `status` never needs.
const importMetaUrl = "const __importMeta = { get url() { return require('node:url').pathToFileURL(__filename).href; } };";
const common = {
  bundle: true, format: 'cjs', platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning',
  // Node 20 has \p{...} in regexes. Lowered to `new RegExp()`, valibot's unused EMOJI_REGEX is no
  // longer dropped, and building it at load reads ICU's property tables (~0.25 MiB of RSS).
  // import() of another bundle as require(): a real import() starts Node's ESM loader and runs its
  // CommonJS lexer over the file, ~10 ms a start on this machine (#19), ~0.8 MiB of daemon RSS.
  supported: { 'regexp-unicode-property-escapes': true, 'dynamic-import': false },
  define: { 'import.meta': '__importMeta' },
};

/** Run as a program (`node daemon.cjs start ...`, by `start`), the daemon bundle runs `start`. */
const runWhenMain = 'if (require.main === module) void module.exports.runAsProgram();';

/** Source module -> its own bundle, each reached from the others through require at run time. */
const SIBLINGS = {
  // `start` and the daemon in one bundle, which the detached daemon runs (daemon-main.ts): its
  // process then holds one copy of their code (#18, daemon RSS).
  'src/cli/daemon-main.ts': 'daemon.cjs',
  'src/cli/exit-codes.ts': 'exit-codes.cjs',
  'src/cli/control-commands.ts': 'control.cjs',
  // status and metrics at the noted location, with nothing else (quick-commands.ts).
  'src/cli/quick-commands.ts': 'quick.cjs',
  'src/cli/config-command.ts': 'config.cjs',
  'src/cli/logs.ts': 'logs.cjs',
  'src/cli/install-service.ts': 'install-service.cjs',
  // The configuration stack (smol-toml, valibot, the schema): status and metrics mostly find the
  // daemon without it (src/cli/location-cache.ts). errors.cjs is shared for `instanceof ConfigError`.
  'src/config/load.ts': 'config-load.cjs',
  'src/config/file.ts': 'config-file.cjs',
  'src/config/errors.ts': 'config-errors.cjs',
};
const siblingOf = new Map(Object.entries(SIBLINGS).map(([src, out]) => [src.replace(/^src\//, '').replace(/\.ts$/, '.js'), out]));

/** An import of another bundle's module stays an import, of that bundle, except in the bundle itself. */
const asSiblings = (self) => ({
  name: 'as-siblings',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      const rel = resolvePath(args.resolveDir, args.path).slice(resolvePath('src').length + 1);
      const out = siblingOf.get(rel);
      return out === undefined || out === self ? undefined : { path: `./${out}`, external: true };
    });
  },
});

await Promise.all([
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: `${next}/autopilotd.cjs`, banner: { js: `#!/usr/bin/env node\n${importMetaUrl}` }, plugins: [asSiblings('autopilotd.cjs')] }),
  ...Object.entries(SIBLINGS).map(([src, out]) =>
    build({ ...common, entryPoints: [src], outfile: `${next}/${out}`, banner: { js: importMetaUrl }, plugins: [asSiblings(out)], ...(out === 'daemon.cjs' ? { footer: { js: runWhenMain } } : {}) })),
]);
chmodSync(`${next}/autopilotd.cjs`, 0o755);
try {
  renameSync('dist/bin', old);
} catch (err) {
  if (err.code !== 'ENOENT') throw err; // first build: nothing to move aside
}
renameSync(next, 'dist/bin');
rmSync(old, { recursive: true, force: true });
