// The command-line layer: the few settings that have a flag. --config is handled in file.ts.
import type { ConfigFlags } from './types.js';
import type { LayerValue } from './layer.js';

/** Flag spelling per ConfigFlags field, used in problems and `config show`; the CLI must match. */
export const FLAG_NAMES = {
  configPath: '--config',
  instance: '--instance',
  project: '--project',
  workdir: '--workdir',
  workerCommand: '-- <worker argv>',
} as const satisfies Record<keyof ConfigFlags, string>;

const FLAG_KEYS = {
  project: 'project',
  workdir: 'working_dir',
  workerCommand: 'worker.command',
} as const;

export function readFlagLayer(flags: ConfigFlags, cwd: string): LayerValue[] {
  const values: LayerValue[] = [];
  for (const field of Object.keys(FLAG_KEYS) as Array<keyof typeof FLAG_KEYS>) {
    const raw = flags[field];
    if (raw === undefined) continue;
    const flag = FLAG_NAMES[field];
    values.push({ key: FLAG_KEYS[field], raw, origin: { source: 'flag', flag }, source: { kind: 'flag', name: flag }, baseDir: cwd });
  }
  return values;
}
