// A value as one layer (default, file, environment, flag) gave it, before and after validation.
import type { ProblemOrigin } from './errors.js';
import type { ValueSource } from './types.js';

export interface LayerValue {
  /** Dotted key, e.g. "memory.poll_interval_ms". */
  key: string;
  /** As parsed: bigint for integers, strings, arrays, tables. */
  raw: unknown;
  /** For problems. */
  origin: ProblemOrigin;
  /** For `config show` and LoadedConfig.sources. */
  source: ValueSource;
  /** Relative paths in this value resolve against this directory. */
  baseDir: string;
  /** The text of an environment variable, shown as "got" instead of the coerced value. */
  rawText?: string;
}

export interface EffectiveValue {
  value: unknown;
  origin: ProblemOrigin;
  source: ValueSource;
}

/** Precedence of a source: a higher rank overrides a lower one. */
export function sourceRank(source: ValueSource): number {
  return { default: 0, file: 1, env: 2, flag: 3 }[source.kind];
}

/** "default", "file:12", "env AUTOPILOTD_X", "flag --project": the `config show` comment. */
export function sourceLabel(source: ValueSource): string {
  switch (source.kind) {
    case 'default':
      return 'default';
    case 'file':
      return source.line === undefined ? `file ${source.path}` : `file:${source.line}`;
    case 'env':
      return `env ${source.name}`;
    case 'flag':
      return `flag ${source.name}`;
  }
}
