// `config show`: the effective configuration as TOML that loads back to the same values, each
// line commented with where its value came from.
import { getByKey } from './key-path.js';
import { sourceLabel } from './layer.js';
import { FIELDS, type Field } from './schema.js';
import { describeSize } from './size.js';
import { tomlFloat, tomlInline, tomlString } from './toml-text.js';
import type { LoadedConfig } from './types.js';

export function formatConfigShow(loaded: LoadedConfig): string {
  const lines = [
    '# autopilotd effective configuration',
    `# config file: ${loaded.path === null ? 'none (built-in defaults)' : tomlString(loaded.path)}`,
  ];
  let section = '';
  for (const field of FIELDS) {
    const dot = field.key.indexOf('.');
    const owner = dot < 0 ? '' : field.key.slice(0, dot);
    const name = field.key.slice(dot + 1);
    if (owner !== section) {
      lines.push('', `[${owner}]`);
      section = owner;
    }
    const value = getByKey(loaded.config, field.key);
    const source = loaded.sources[field.key];
    const origin = source === undefined ? 'unknown' : sourceLabel(source);
    if (value === null || value === undefined) {
      // TOML has no null: an unset optional key is shown commented out.
      lines.push(`# ${name} is not set  # ${origin}`);
      continue;
    }
    const note = field.kind === 'size' ? ` (${describeSize(value as number)})` : '';
    lines.push(`${name} = ${formatValue(field, value)}  # ${origin}${note}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatValue(field: Field, value: unknown): string {
  switch (field.kind) {
    case 'integer':
    case 'size':
      return String(value);
    case 'number':
      return tomlFloat(value as number);
    case 'exit-codes':
      return `[${(value as number[]).join(', ')}]`;
    default:
      return tomlInline(value);
  }
}
