// Test helper: a temporary home directory, removed when the test ends.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { ConfigError, formatProblem } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';

export interface TempHome {
  dir: string;
  /** Writes `text` to `relativePath` under the home dir (creating parents); returns the absolute path. */
  write(relativePath: string, text: string): string;
}

export function makeTempHome(t: TestContext): TempHome {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autopilotd-config-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    write(relativePath, text) {
      const file = path.join(dir, relativePath);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      return file;
    },
  };
}

/** Runs `load`, asserts that it throws a ConfigError, and returns it. */
export function expectConfigError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected loadConfig to throw a ConfigError, but it returned');
}

/** The configuration of `home` (its ~/.autopilot/daemon.toml) with `env` on top, as the daemon loads it. */
export function loadHome(home: { dir: string }, env: Record<string, string> = {}) {
  return loadConfig({ flags: {}, env, homeDir: home.dir, cwd: '/' });
}

/** The problems loading `home` gives, each as the daemon prints it (file:line:col: key: ...). */
export function problemsOfHome(home: { dir: string }, env: Record<string, string> = {}): string[] {
  return expectConfigError(() => loadHome(home, env)).problems.map(formatProblem);
}
