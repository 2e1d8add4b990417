// The file layer: which file to read, reading it, and splitting its tables into dotted keys.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { DEFAULT_CONFIG_PATH } from './defaults.js';
import { INSTANCE_FLAG, instanceConfigPath } from './instance.js';
import type { ConfigProblem, ProblemOrigin } from './errors.js';
import type { LayerValue } from './layer.js';
import { KeyLocator, keyAtPosition } from './locate.js';
import { resolveConfigPath } from './paths.js';
import { FIELD_BY_KEY, keysOf, SECTIONS } from './schema.js';
import { closestMatch } from './suggest.js';
import { describeValue } from './toml-text.js';
import { decodeUtf8Text } from './utf8-text.js';

export const CONFIG_ENV = 'AUTOPILOTD_CONFIG';
export const CONFIG_FLAG = '--config';

export interface ConfigFileChoice {
  path: string;
  /** Named by a flag or the environment: then it must exist. */
  named: ProblemOrigin | null;
}

export interface FileLayer {
  /** The file that was read, or null when the default file does not exist. */
  path: string | null;
  /** False when the file could not be read or parsed, so its values are unknown. */
  complete: boolean;
  values: LayerValue[];
  locator: KeyLocator | null;
}

/**
 * --config wins over AUTOPILOTD_CONFIG, which wins over the default path. With --instance the
 * default path is the instance's file, and it must exist: `autopilotd@typo` must not start a
 * worker on the built-in defaults.
 */
export function chooseConfigFile(
  flagPath: string | undefined,
  env: Record<string, string | undefined>,
  homeDir: string,
  cwd: string,
  problems: ConfigProblem[],
  instance: string | null = null,
): ConfigFileChoice | null {
  const candidates: Array<[string | undefined, ProblemOrigin]> = [
    [flagPath, { source: 'flag', flag: CONFIG_FLAG }],
    [env[CONFIG_ENV], { source: 'env', envName: CONFIG_ENV }],
  ];
  for (const [given, origin] of candidates) {
    if (given === undefined) continue;
    if (given === '' || given.includes('\0')) {
      problems.push({ ...origin, key: '', expected: 'a path to a TOML file', got: JSON.stringify(given) });
      return null;
    }
    return { path: resolveConfigPath(given, homeDir, cwd), named: origin };
  }
  if (instance !== null) {
    return { path: resolveConfigPath(instanceConfigPath(instance), homeDir, cwd), named: { source: 'flag', flag: INSTANCE_FLAG } };
  }
  return { path: resolveConfigPath(DEFAULT_CONFIG_PATH, homeDir, cwd), named: null };
}

export function readFileLayer(choice: ConfigFileChoice, problems: ConfigProblem[]): FileLayer {
  const file = choice.path;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (choice.named === null && (code === 'ENOENT' || code === 'ENOTDIR')) {
      return { path: null, complete: true, values: [], locator: null };
    }
    const origin: ProblemOrigin = choice.named ?? { source: 'file', file };
    const reason = `cannot read config file: ${(error as Error).message}`;
    const problem: ConfigProblem = { ...origin, key: '', expected: 'a readable TOML file', got: JSON.stringify(file), reason };
    if (origin.source === 'flag' && origin.flag === INSTANCE_FLAG && code === 'ENOENT') {
      problem.hint = 'an instance reads its own file: create it (it may hold only worker.command), or give one with --config';
    }
    problems.push(problem);
    return { path: file, complete: false, values: [], locator: null };
  }
  const decoded = decodeUtf8Text(bytes);
  if (!decoded.ok) {
    const got = decoded.badBytes.length === 1 ? 'byte' : 'bytes';
    const hex = [...decoded.badBytes].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
    problems.push({
      source: 'file', file, line: decoded.line, column: decoded.column, key: keyAtPosition(bytes.toString('utf8'), decoded.line, decoded.column) ?? '',
      expected: 'UTF-8 text', got: `${got} ${hex}`,
      hint: 'save the file as UTF-8',
    });
    return { path: file, complete: false, values: [], locator: null };
  }
  const source = decoded.text;
  let document: Record<string, unknown>;
  try {
    document = parse(source, { integersAsBigInt: true, unsafeKeyBehaviour: 'keep' });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const message = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    const reason = `invalid TOML: ${message}`;
    const key = keyAtPosition(source, error.line, error.column) ?? '';
    problems.push({ source: 'file', file, line: error.line, column: error.column, key, expected: 'valid TOML', reason });
    return { path: file, complete: false, values: [], locator: null };
  }
  const locator = new KeyLocator(source);
  return { path: file, complete: true, values: splitDocument(document, file, locator, problems), locator };
}

/** One LayerValue per known key; a problem for each unknown key or misplaced table. */
function splitDocument(document: Record<string, unknown>, file: string, locator: KeyLocator, problems: ConfigProblem[]): LayerValue[] {
  const values: LayerValue[] = [];
  const baseDir = path.dirname(file);
  const originOf = (keyPath: string[]): ProblemOrigin => {
    const at = locator.find(keyPath);
    return at === undefined ? { source: 'file', file } : { source: 'file', file, line: at.line, column: at.column };
  };
  const add = (key: string, raw: unknown): void => {
    const origin = originOf(key.split('.'));
    const line = origin.source === 'file' ? origin.line : undefined;
    values.push({ key, raw, origin, baseDir, source: line === undefined ? { kind: 'file', path: file } : { kind: 'file', path: file, line } });
  };
  for (const [name, value] of Object.entries(document)) {
    if (SECTIONS.includes(name)) {
      if (!isTable(value)) {
        problems.push({ ...originOf([name]), key: name, expected: `a table ([${name}])`, got: describeValue(value) });
        continue;
      }
      for (const [inner, innerValue] of Object.entries(value)) {
        const key = `${name}.${inner}`;
        if (FIELD_BY_KEY.has(key)) add(key, innerValue);
        else problems.push(unknownKey(name, inner, innerValue, originOf([name, inner])));
      }
    } else if (FIELD_BY_KEY.has(name)) {
      add(name, value);
    } else {
      problems.push(unknownKey('', name, value, originOf([name])));
    }
  }
  return values;
}

function unknownKey(section: string, name: string, value: unknown, origin: ProblemOrigin): ConfigProblem {
  const key = section === '' ? name : `${section}.${name}`;
  const isSection = section === '' && isTable(value);
  const known = section === '' ? [...keysOf(''), ...SECTIONS] : keysOf(section);
  const problem: ConfigProblem = {
    ...origin,
    key,
    expected: section === '' ? `one of ${known.join(', ')}` : `a key of [${section}]: ${known.join(', ')}`,
    reason: isSection ? 'unknown section' : 'unknown key',
  };
  const near = closestMatch(name, isSection ? SECTIONS : known);
  const elsewhere = near === undefined ? [...FIELD_BY_KEY.keys()].find((other) => other !== key && other.split('.').pop() === name) : undefined;
  if (near !== undefined) problem.hint = `did you mean ${JSON.stringify(near)}?`;
  else if (elsewhere !== undefined) {
    const home = elsewhere.includes('.') ? `in [${elsewhere.split('.')[0]}]` : 'at the top, before any [section]';
    problem.hint = `did you mean ${JSON.stringify(elsewhere)}? (it belongs ${home})`;
  }
  return problem;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date);
}
