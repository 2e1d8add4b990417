import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, formatProblem } from '../../src/config/errors.js';

test('a file problem reads file:line:column: key: expected, got', () => {
  const line = formatProblem({ source: 'file', file: '/home/u/.autopilot/daemon.toml', line: 12, column: 1, key: 'memory.poll_interval_ms', expected: 'an integer >= 100 (milliseconds)', got: '-5' });
  assert.equal(line, '/home/u/.autopilot/daemon.toml:12:1: memory.poll_interval_ms: expected an integer >= 100 (milliseconds), got -5');
});

test('an environment problem names the variable', () => {
  const line = formatProblem({ source: 'env', envName: 'AUTOPILOTD_MEMORY_POLL_INTERVAL_MS', key: 'memory.poll_interval_ms', expected: 'an integer >= 100 (milliseconds)', got: '"fast"' });
  assert.equal(line, 'environment AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: memory.poll_interval_ms: expected an integer >= 100 (milliseconds), got "fast"');
});

test('a problem with a reason and a hint reads key: reason; hint', () => {
  const line = formatProblem({ source: 'file', file: '/x/daemon.toml', line: 3, column: 1, key: 'memroy', expected: 'one of worker, memory', reason: 'unknown section', hint: 'did you mean "memory"?' });
  assert.equal(line, '/x/daemon.toml:3:1: memroy: unknown section; did you mean "memory"?');
});

test('a problem with a reason still shows what was found, unless the reason already names it', () => {
  const where = { source: 'flag', flag: '--config', key: '', expected: 'a readable TOML file', got: '"/x/dir.toml"' } as const;
  assert.equal(formatProblem({ ...where, reason: 'cannot read config file: EISDIR: illegal operation on a directory, read' }), 'flag --config: cannot read config file: EISDIR: illegal operation on a directory, read, got "/x/dir.toml"');
  assert.equal(formatProblem({ ...where, reason: "cannot read config file: ENOENT: no such file or directory, open '/x/dir.toml'" }), "flag --config: cannot read config file: ENOENT: no such file or directory, open '/x/dir.toml'");
});

test('a ConfigError carries a stable code, exit code 78 and one message line per problem', () => {
  const error = new ConfigError([
    { source: 'flag', flag: '--project', key: 'project', expected: 'a non-empty string', got: '""' },
    { source: 'file', file: '/x.toml', key: '', expected: 'a readable TOML file', reason: 'cannot read config file: EACCES' },
  ]);
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'ConfigError');
  assert.equal(error.code, 'config_invalid');
  assert.equal(error.exitCode, 78);
  assert.equal(error.problems.length, 2);
  assert.equal(error.message, 'flag --project: project: expected a non-empty string, got ""\n/x.toml: cannot read config file: EACCES');
});
