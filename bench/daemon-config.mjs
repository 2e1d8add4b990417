// A daemon configuration for a benchmark: everything the daemon creates stays inside `dir`.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopByPid } from './processes.mjs';

const CLI = fileURLToPath(new URL('../dist/bin/autopilotd.cjs', import.meta.url));

/** Writes `dir`/daemon.toml with the daemon's files in `dir`, then `sections` (TOML lines); returns its path. */
export function writeDaemonConfig(dir, sections) {
  const path = join(dir, 'daemon.toml');
  writeFileSync(path, [
    `working_dir = ${JSON.stringify(dir)}`,
    `socket_path = ${JSON.stringify(join(dir, 'd.sock'))}`,
    `pid_file = ${JSON.stringify(join(dir, 'd.pid'))}`,
    ...sections,
    '[logs]',
    `dir = ${JSON.stringify(join(dir, 'logs'))}`,
    '',
  ].join('\n'));
  return path;
}

/**
 * `autopilotd start` (detached) with writeDaemonConfig(dir, sections); returns the daemon's pid and
 * a stop that runs `autopilotd stop`, then makes sure by pid.
 */
export function startDetachedDaemon(dir, env, sections) {
  const config = writeDaemonConfig(dir, sections);
  const r = spawnSync(process.execPath, [CLI, 'start', '--config', config], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`autopilotd start exited ${r.status}: ${r.stdout}${r.stderr}`);
  const pid = Number(/pid (\d+)/.exec(r.stdout)?.[1]);
  return {
    pid,
    stop: async () => {
      spawnSync(process.execPath, [CLI, 'stop', '--config', config], { env, encoding: 'utf8', timeout: 60_000 });
      await stopByPid(pid, 'autopilotd');
    },
  };
}
