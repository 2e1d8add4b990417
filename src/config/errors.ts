// ConfigError: every problem found while loading the configuration, one line each.
// Exit code 78 is EX_CONFIG from sysexits.h, which systemd and shells know as "configuration error".
import type { LoadedConfig } from './types.js';

/** Where a problem was found. 'default' only for a built-in value that the host makes invalid. */
export type ProblemOrigin =
  | { source: 'file'; file: string; line?: number; column?: number }
  | { source: 'env'; envName: string }
  | { source: 'flag'; flag: string }
  | { source: 'default' };

export interface ConfigProblem {
  source: 'file' | 'env' | 'flag' | 'default';
  file?: string;
  envName?: string;
  flag?: string;
  /** Dotted key, e.g. "memory.poll_interval_ms"; '' when the problem has no key (TOML syntax). */
  key: string;
  line?: number;
  column?: number;
  expected: string;
  got?: string;
  hint?: string;
  /** Replaces "expected ..., got ..." in the message when that reads badly ("unknown section"). */
  reason?: string;
}

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly exitCode = 78;
  readonly problems: ConfigProblem[];
  /**
   * The configuration with every invalid value left at what the layers below gave. Never to run
   * a daemon with; enough for a client to find a daemon that started before the file broke.
   */
  readonly bestEffort: LoadedConfig | null;

  constructor(problems: ConfigProblem[], bestEffort: LoadedConfig | null = null) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
    this.bestEffort = bestEffort;
  }
}

/** One line: "<where>: <key>: expected <x>, got <y>; <hint>". */
export function formatProblem(problem: ConfigProblem): string {
  const got = problem.got === undefined ? '' : `, got ${problem.got}`;
  // A reason replaces "expected ..."; what was found still shows unless the reason names it (Node's
  // EISDIR message for a config file named by --config names no path).
  const what = problem.reason === undefined ? `expected ${problem.expected}${got}` : problem.got === undefined || problem.reason.includes(unquote(problem.got)) ? problem.reason : `${problem.reason}${got}`;
  const key = problem.key === '' ? '' : `${problem.key}: `;
  const hint = problem.hint === undefined ? '' : `; ${problem.hint}`;
  return `${formatWhere(problem)}: ${key}${what}${hint}`;
}

function unquote(text: string): string {
  return text.length >= 2 && text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1) : text;
}

function formatWhere(problem: ConfigProblem): string {
  switch (problem.source) {
    case 'file': {
      const position = problem.line === undefined ? '' : `:${problem.line}:${problem.column ?? 1}`;
      return `${problem.file ?? '(file)'}${position}`;
    }
    case 'env':
      return `environment ${problem.envName ?? ''}`;
    case 'flag':
      return `flag ${problem.flag ?? ''}`;
    case 'default':
      return 'built-in default';
  }
}
