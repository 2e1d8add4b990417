// A daemon configuration for a benchmark: everything the daemon creates stays inside `dir`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
