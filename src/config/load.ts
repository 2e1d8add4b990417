// loadConfig: the one entry point. Defaults < file < environment < flags, every problem collected
// before anything is thrown, so one run of the daemon shows the operator all that needs fixing.
import { DEFAULTS } from './defaults.js';
import { instanceNameProblem, instancePathDefaults } from './instance.js';
import { readEnvLayer } from './env.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { chooseConfigFile, readFileLayer } from './file.js';
import { getByKey, setByKey } from './key-path.js';
import { readFlagLayer } from './flags.js';
import type { EffectiveValue, LayerValue } from './layer.js';
import { resolveConfigPath } from './paths.js';
import { checkRules } from './rules.js';
import { FIELD_BY_KEY, FIELDS } from './schema.js';
import type { Config, ConfigFlags, LoadedConfig, ValueSource } from './types.js';
import { validateValue } from './validate.js';

export { DEFAULT_CONFIG_PATH, DEFAULTS } from './defaults.js';
export { ConfigError, type ConfigProblem } from './errors.js';

export interface LoadConfigInput {
  flags: ConfigFlags;
  env: Record<string, string | undefined>;
  homeDir: string;
  cwd: string;
}

/** Reads, merges and validates the configuration; throws ConfigError listing every problem. */
export function loadConfig(input: LoadConfigInput): LoadedConfig {
  const { flags, env, homeDir, cwd } = input;
  const problems: ConfigProblem[] = [];

  const instance = flags.instance ?? null;
  // The command line checked it already (exit 64); this guards every other caller.
  if (instance !== null && instanceNameProblem(instance) !== null) throw new Error(`config: ${instanceNameProblem(instance)}`);
  const defaults = instance === null ? DEFAULTS : withInstancePaths(instance);
  const choice = chooseConfigFile(flags.configPath, env, homeDir, cwd, problems, instance);
  const file = choice === null ? null : readFileLayer(choice, problems);
  const layers: LayerValue[][] = [file?.values ?? [], readEnvLayer(env, cwd, problems), readFlagLayer(flags, cwd)];

  const effective = new Map<string, EffectiveValue>();
  for (const field of FIELDS) {
    const value = getByKey(defaults, field.key);
    effective.set(field.key, {
      // A copy, so that a caller changing its config cannot reach the frozen defaults.
      value: field.kind === 'path' && typeof value === 'string' ? resolveConfigPath(value, homeDir, homeDir) : structuredClone(value),
      origin: { source: 'default' },
      source: { kind: 'default' },
    });
  }
  const invalidKeys = new Set<string>();
  for (const layer of layers) {
    for (const given of layer) {
      const field = FIELD_BY_KEY.get(given.key);
      if (field === undefined) throw new Error(`config: layer gave unknown key ${given.key}`);
      const locate = given.origin.source === 'file' ? file?.locator?.find.bind(file.locator) : undefined;
      const checked = validateValue(field, given, homeDir, problems, locate);
      if (checked === undefined) invalidKeys.add(given.key);
      else effective.set(given.key, { value: checked.value, origin: given.origin, source: given.source });
    }
  }
  // A file that could not be read or parsed has unknown values: pair rules would judge the wrong pair.
  if (file === null || file.complete) checkRules(effective, invalidKeys, problems);
  const config = structuredClone(defaults) as Config;
  const sources: Record<string, ValueSource> = {};
  for (const [key, { value, source }] of effective) {
    setByKey(config, key, value);
    sources[key] = source;
  }
  const loaded = { config, path: file?.path ?? null, sources };
  if (problems.length > 0) throw new ConfigError(sortProblems(problems), loaded);
  return loaded;
}

/** The defaults with instance `name`'s socket, PID file and log directory. */
function withInstancePaths(name: string): Config {
  const defaults = structuredClone(DEFAULTS) as Config;
  for (const [key, value] of Object.entries(instancePathDefaults(name))) setByKey(defaults, key, value);
  return defaults;
}

// Grouped by where to fix them (file, environment, flags), the file's in line order, variables by name.
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const rank = { file: 0, env: 1, flag: 2, default: 3 } as const;
  return [...problems].sort(
    (a, b) =>
      rank[a.source] - rank[b.source] ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      (a.envName ?? '').localeCompare(b.envName ?? ''),
  );
}
