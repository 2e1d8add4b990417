// `npm install` builds the native helper (src/native/, binding.gyp) with node-gyp, quietly. The
// helper is optional: when it cannot be built (no compiler, no Node headers, no network for
// node-gyp to fetch them) this says so in one line and exits 0, so the install still succeeds and
// the daemon falls back to the systemd-notify binary (README, "The native helper").
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const logPath = join(root, 'build', 'native-build.log');

/**
 * npm hands its bundled node-gyp to scripts as npm_config_node_gyp; run by hand, the copy in the
 * npm installed beside this node, else one on PATH.
 */
function nodeGypCommand() {
  const besideNode = join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  for (const script of [process.env.npm_config_node_gyp, besideNode]) {
    if (script && existsSync(script)) return [process.execPath, script];
  }
  return ['node-gyp'];
}

/**
 * Headers beside this node (<prefix>/include/node, as official tarballs and distro packages lay
 * them out) spare node-gyp a download that fails offline. npm's own `nodedir` setting wins.
 */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

const [command, ...args] = nodeGypCommand();
const result = spawnSync(command, [...args, 'rebuild', ...nodedirArgs()], {
  cwd: root,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  // node-gyp may try to download headers; offline that can hang rather than fail.
  timeout: 180_000,
});
const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
if (result.status === 0) process.exit(0);
const why = result.error ? result.error.message : result.signal ? `killed by ${result.signal}` : `node-gyp exited ${result.status}`;
let where = '';
try {
  mkdirSync(dirname(logPath), { recursive: true });
  writeFileSync(logPath, output);
  where = `; its output is in ${logPath}`;
} catch (err) {
  where = `; its output could not be saved to ${logPath}: ${err.message}`;
}
process.stderr.write(`autopilotd: native helper not built (${why}${where}); the daemon runs without it and uses systemd-notify instead (see README, "The native helper")\n`);
process.exit(0);
