// Bad configuration files: each must fail with a ConfigError naming the file, the line and the key.
import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { expectConfigError, makeTempHome } from './temp-home.js';

interface BadFile {
  name: string;
  toml: string;
  key: string;
  line: number;
  column?: number;
  /** More text the message must contain, e.g. the "got" part or a hint. */
  says?: string[];
}

const LONG_DIR = 'd'.repeat(120);

const BAD_FILES: BadFile[] = [
  { name: 'a negative poll interval', toml: '[memory]\npoll_interval_ms = -5\n', key: 'memory.poll_interval_ms', line: 2, says: ['expected an integer >= 100 (milliseconds), got -5'] },
  { name: 'a poll interval below 100 ms', toml: '# comment\n\n[memory]\npoll_interval_ms = 99\n', key: 'memory.poll_interval_ms', line: 4, says: ['got 99'] },
  { name: 'a fractional integer', toml: '[memory]\n\npoll_interval_ms = 5000.5\n', key: 'memory.poll_interval_ms', line: 3, says: ['got 5000.5'] },
  { name: 'a float where an integer is expected, even if whole', toml: '[worker]\nstop_timeout_ms = 10.0\n', key: 'worker.stop_timeout_ms', line: 2, says: ['got 10.0'] },
  { name: 'a quoted integer', toml: '[memory]\npoll_interval_ms = "5000"\n', key: 'memory.poll_interval_ms', line: 2, says: ['got "5000"', 'without quotes'] },
  { name: 'a duration with a unit', toml: '[restart]\nstable_after_ms = "10s"\n', key: 'restart.stable_after_ms', line: 2, says: ['whole milliseconds'] },
  { name: 'a negative kill grace', toml: '[memory]\nkill_grace_ms = -1\n', key: 'memory.kill_grace_ms', line: 2, says: ['an integer >= 0'] },
  { name: 'a boolean cooldown', toml: '[memory]\ncooldown_ms = true\n', key: 'memory.cooldown_ms', line: 2, says: ['got true'] },
  { name: 'a negative stop timeout', toml: '[worker]\nstop_timeout_ms = -1\n', key: 'worker.stop_timeout_ms', line: 2 },
  { name: 'an empty command', toml: '[worker]\ncommand = []\n', key: 'worker.command', line: 2, says: ['a non-empty array of strings'] },
  { name: 'an empty program name', toml: '[worker]\ncommand = ["", "run"]\n', key: 'worker.command[0]', line: 2, says: ['a non-empty program name'] },
  { name: 'a command given as one string', toml: '[worker]\ncommand = "cargo run"\n', key: 'worker.command', line: 2, says: ['got "cargo run"'] },
  { name: 'a command with a number in it', toml: '[worker]\ncommand = ["node", 5]\n', key: 'worker.command[1]', line: 2, says: ['expected a string, got 5'] },
  { name: 'a worker env value that is not a string', toml: '[worker]\nenv = { A = "1", B = 2 }\n', key: 'worker.env.B', line: 2, column: 18, says: ['a string value, got 2'] },
  { name: "a worker env name containing '='", toml: '[worker]\nenv = { "A=B" = "1" }\n', key: 'worker.env."A=B"', line: 2, says: ["without '='"] },
  { name: 'a worker env that sets the reserved instance marker', toml: '[worker]\nenv = { AUTOPILOTD_INSTANCE = "x" }\n', key: 'worker.env.AUTOPILOTD_INSTANCE', line: 2 },
  { name: 'a worker env that sets the reserved generation', toml: '[worker.env]\nPATH = "/bin"\nAUTOPILOTD_GENERATION = "3"\n', key: 'worker.env.AUTOPILOTD_GENERATION', line: 3 },
  { name: 'a worker env value with a NUL', toml: '[worker]\nenv = { A = "x\\u0000y" }\n', key: 'worker.env.A', line: 2, says: ['without NUL'] },
  { name: 'a worker env name that is empty', toml: '[worker]\nenv = { "" = "x" }\n', key: 'worker.env.""', line: 2, says: ['a non-empty variable name'] },
  { name: 'an unknown restart mode', toml: '[worker]\nrestart = "on_failure"\n', key: 'worker.restart', line: 2, says: ['one of "always", "on-failure"', 'did you mean "on-failure"?'] },
  { name: 'an unknown hog scope', toml: '[memory]\nhog_scope = "system"\n', key: 'memory.hog_scope', line: 2, says: ['one of "tree", "user"'] },
  { name: 'an unknown log level', toml: 'log_level = "verbose"\n', key: 'log_level', line: 1, says: ['"debug", "info", "warn", "error"'] },
  { name: 'no hog names', toml: '[memory]\nhog_names = []\n', key: 'memory.hog_names', line: 2 },
  { name: 'an empty hog name', toml: '[memory]\nhog_names = ["node", ""]\n', key: 'memory.hog_names[1]', line: 2, says: ['a non-empty process name'] },
  { name: 'a PSI threshold of zero', toml: '[memory]\npsi_some_avg10 = 0\n', key: 'memory.psi_some_avg10', line: 2, says: ['a number > 0 and <= 100 (percent)'] },
  { name: 'a PSI threshold above 100 percent', toml: '[memory]\npsi_some_avg10 = 100.5\n', key: 'memory.psi_some_avg10', line: 2, says: ['got 100.5'] },
  { name: 'a PSI threshold of inf', toml: '[memory]\npsi_some_avg10 = inf\n', key: 'memory.psi_some_avg10', line: 2, says: ['got inf'] },
  { name: 'a zero size', toml: '[memory]\nmin_available_bytes = 0\n', key: 'memory.min_available_bytes', line: 2, says: ['a size > 0'] },
  { name: 'a size with an unknown unit', toml: '[memory]\nnode_kill_threshold_bytes = "500 megs"\n', key: 'memory.node_kill_threshold_bytes', line: 2, says: ['unknown unit "megs"'] },
  { name: 'a size that is not a whole number of bytes', toml: '[memory]\nworker_max_bytes = "1.5B"\n', key: 'memory.worker_max_bytes', line: 2, says: ['not a whole number of bytes'] },
  { name: 'a negative size string', toml: '[memory]\nworker_max_bytes = "-1GiB"\n', key: 'memory.worker_max_bytes', line: 2 },
  { name: 'a critical threshold above the low threshold', toml: '[memory]\nmin_available_bytes = "1GiB"\ncritical_threshold_bytes = "2GiB"\n', key: 'memory.critical_threshold_bytes', line: 3, says: ['less than memory.min_available_bytes (1073741824, from file:2), got 2147483648'] },
  { name: 'a low threshold lowered below the default critical one', toml: '\n[memory]\nmin_available_bytes = "512MiB"\n', key: 'memory.min_available_bytes', line: 3, says: ['greater than memory.critical_threshold_bytes (1073741824, from default), got 536870912'] },
  { name: 'a zero initial backoff', toml: '[restart]\ninitial_backoff_ms = 0\n', key: 'restart.initial_backoff_ms', line: 2, says: ['an integer > 0'] },
  { name: 'an initial backoff above the maximum', toml: '[restart]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 1000\n', key: 'restart.initial_backoff_ms', line: 2, says: ['at most restart.max_backoff_ms (1000, from file:3), got 5000'] },
  { name: 'a backoff multiplier below 1', toml: '[restart]\nbackoff_multiplier = 0.5\n', key: 'restart.backoff_multiplier', line: 2, says: ['a number >= 1, got 0.5'] },
  { name: 'zero restarts allowed', toml: '[restart]\nmax_consecutive_restarts = 0\n', key: 'restart.max_consecutive_restarts', line: 2 },
  { name: 'a zero stable time', toml: '[restart]\nstable_after_ms = 0\n', key: 'restart.stable_after_ms', line: 2 },
  { name: 'a negative exit code', toml: '[restart]\nprevent_exit_codes = [-1]\n', key: 'restart.prevent_exit_codes[0]', line: 2, says: ['expected an exit code (an integer 0..255), got -1'] },
  { name: 'an exit code above 255', toml: '[restart]\nhold_exit_codes = [75, 300]\n', key: 'restart.hold_exit_codes[1]', line: 2, says: ['got 300'] },
  { name: 'an exit code given as a float', toml: '[restart]\nhold_exit_codes = [75.0]\n', key: 'restart.hold_exit_codes[0]', line: 2, says: ['got 75.0'] },
  { name: 'an exit code in both lists', toml: '[restart]\nprevent_exit_codes = [3, 75]\nhold_exit_codes = [75]\n', key: 'restart.hold_exit_codes', line: 3, says: ['no code that is also in restart.prevent_exit_codes (from file:2), got [75] (75 in both lists)'] },
  { name: 'a hold above its cap', toml: '[restart]\nhold_max_ms = 60000\nhold_ms = 120000\n', key: 'restart.hold_ms', line: 3, says: ['at most restart.hold_max_ms (60000, from file:2), got 120000'] },
  { name: 'a zero hold', toml: '[restart]\nhold_ms = 0\n', key: 'restart.hold_ms', line: 2, says: ['an integer > 0'] },
  { name: 'a negative crash context', toml: '[worker]\ncrash_context_lines = -1\n', key: 'worker.crash_context_lines', line: 2, says: ['an integer 0..1000'] },
  { name: 'a worker env that sets the reserved hold file', toml: '[worker]\nenv = { AUTOPILOTD_HOLD_UNTIL_FILE = "/tmp/x" }\n', key: 'worker.env.AUTOPILOTD_HOLD_UNTIL_FILE', line: 2 },
  { name: 'zero log files', toml: '[logs]\nmax_files = 0\n', key: 'logs.max_files', line: 2 },
  { name: 'a log file limit below 64 KiB', toml: '[logs]\nmax_file_bytes = "1KiB"\n', key: 'logs.max_file_bytes', line: 2, says: ['a size >= 65536 bytes'] },
  { name: 'an empty project', toml: 'project = ""\n', key: 'project', line: 1, says: ['a non-empty string, got ""'] },
  { name: 'an empty working dir', toml: 'working_dir = ""\n', key: 'working_dir', line: 1 },
  { name: 'an integer too large to be exact', toml: '[logs]\nmax_files = 99999999999999999999\n', key: 'logs.max_files', line: 2, says: ['<= 9007199254740991'] },
  { name: 'a section given as a value', toml: 'memory = 5\n', key: 'memory', line: 1, says: ['expected a table ([memory]), got 5'] },
  { name: 'a misspelt section', toml: 'project = "p"\n\n[memroy]\npoll_interval_ms = 1000\n', key: 'memroy', line: 3, column: 1, says: ['memroy: unknown section; did you mean "memory"?'] },
  { name: 'a misspelt key', toml: '[memory]\npoll_intervall_ms = 1000\n', key: 'memory.poll_intervall_ms', line: 2, says: ['unknown key; did you mean "poll_interval_ms"?'] },
  { name: 'a key in the wrong section', toml: '[worker]\npoll_interval_ms = 1000\n', key: 'worker.poll_interval_ms', line: 2, says: ['did you mean "memory.poll_interval_ms"? (it belongs in [memory])'] },
  { name: 'a sub-table nobody asked for', toml: '[memory.extra]\nx = 1\n', key: 'memory.extra', line: 1, says: ['unknown key'] },
  { name: 'a socket path beyond the Unix socket limit', toml: `socket_path = "${LONG_DIR}/s.sock"\n`, key: 'socket_path', line: 1, says: ['at most 107 bytes'] },
  { name: 'a bad value under a dotted key at the top', toml: 'project = "p"\nmemory.poll_interval_ms = 1\n', key: 'memory.poll_interval_ms', line: 2 },
  { name: 'a bad value in an inline section table', toml: 'restart = { max_files = 3, initial_backoff_ms = 0 }\n', key: 'restart.initial_backoff_ms', line: 1, column: 28 },
  { name: 'a bad value after a multi-line array', toml: '[worker]\ncommand = [\n  "node", # the program\n  "w.js",\n]\nstop_timeout_ms = -1\n', key: 'worker.stop_timeout_ms', line: 6 },
  { name: 'a bad value after a multi-line string that looks like a header', toml: 'project = """\n[memory]\npoll_interval_ms = 1\n"""\n[memory]\npoll_interval_ms = 2\n', key: 'memory.poll_interval_ms', line: 6, says: ['got 2'] },
  { name: 'a misplaced key after a comment that looks like a header', toml: '# [logs] max_files = 1\n[restart]\nmax_files = 3\n', key: 'restart.max_files', line: 3, says: ['did you mean "logs.max_files"?'] },
];

for (const bad of BAD_FILES) {
  test(`a config file with ${bad.name} is rejected at its line`, (t) => {
    const home = makeTempHome(t);
    const file = home.write('conf/daemon.toml', bad.toml);
    const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir }));
    assert.equal(error.code, 'config_invalid');
    assert.equal(error.exitCode, 78);
    const problem = error.problems.find((p) => p.key === bad.key);
    assert.ok(problem, `no problem for key ${bad.key}; got:\n${error.message}`);
    assert.equal(problem.source, 'file');
    assert.equal(problem.file, file);
    assert.equal(problem.line, bad.line, error.message);
    if (bad.column !== undefined) assert.equal(problem.column, bad.column, error.message);
    const where = `${file}:${bad.line}:${problem.column ?? 1}: ${bad.key}: `;
    assert.ok(error.message.includes(where), `message lacks ${JSON.stringify(where)}:\n${error.message}`);
    for (const text of bad.says ?? []) assert.ok(error.message.includes(text), `message lacks ${JSON.stringify(text)}:\n${error.message}`);
  });
}

// The key is the one of the error's line (locate.ts keyAtPosition): broken text names a key too.
const SYNTAX_ERRORS: Array<{ name: string; toml: string; line: number; column: number; key: string; says: string }> = [
  { name: 'an unclosed table header', toml: 'project = "p"\n[memory\npoll_interval_ms = 1000\n', line: 2, column: 8, key: 'memory', says: 'illegal character in key' },
  { name: 'a key defined twice', toml: '[memory]\ncooldown_ms = 1\ncooldown_ms = 2\n', line: 3, column: 1, key: 'memory.cooldown_ms', says: 'redefine' },
  { name: 'an unterminated string', toml: '\nproject = "p', line: 2, column: 11, key: 'project', says: 'unfinished string' },
  { name: 'a missing value', toml: '[logs]\nmax_files =\n', line: 2, column: 12, key: 'logs.max_files', says: 'invalid' },
];

for (const bad of SYNTAX_ERRORS) {
  test(`a config file with ${bad.name} is a TOML syntax problem at its line and column`, (t) => {
    const home = makeTempHome(t);
    const file = home.write('daemon.toml', bad.toml);
    const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir }));
    assert.equal(error.problems.length, 1, error.message);
    const [problem] = error.problems;
    assert.deepEqual({ line: problem?.line, column: problem?.column }, { line: bad.line, column: bad.column }, error.message);
    assert.ok(error.message.startsWith(`${file}:${bad.line}:${bad.column}: ${bad.key}: invalid TOML: `), error.message);
    assert.ok(error.message.includes(bad.says), error.message);
  });
}

test('every problem in a file is reported at once, in line order', (t) => {
  const home = makeTempHome(t);
  const file = home.write(
    '.autopilot/daemon.toml',
    ['log_level = "loud"', '[memroy]', 'x = 1', '[memory]', 'poll_interval_ms = -5', 'hog_names = []', '[restart]', 'backoff_multiplier = 0.5', ''].join('\n'),
  );
  const error = expectConfigError(() => loadConfig({ flags: {}, env: {}, homeDir: home.dir, cwd: '/' }));
  assert.deepEqual(
    error.problems.map((p) => [p.key, p.line]),
    [['log_level', 1], ['memroy', 2], ['memory.poll_interval_ms', 5], ['memory.hog_names', 6], ['restart.backoff_multiplier', 8]],
  );
  const lines = error.message.split('\n');
  assert.equal(lines.length, 5);
  for (const line of lines) assert.ok(line.startsWith(`${file}:`), line);
});

test('problems in the file, the environment and the flags are all reported together', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', '[memory]\ncooldown_ms = -1\n');
  const error = expectConfigError(() =>
    loadConfig({
      flags: { configPath: file, project: '', workerCommand: [] },
      env: { AUTOPILOTD_LOG_LEVEL: 'loud', AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: 'fast' },
      homeDir: home.dir,
      cwd: home.dir,
    }),
  );
  assert.deepEqual(
    error.problems.map((p) => `${p.source} ${p.key}`),
    ['file memory.cooldown_ms', 'env log_level', 'env memory.poll_interval_ms', 'flag project', 'flag worker.command'],
  );
  assert.match(error.message, /^flag --project: project: expected a non-empty string, got ""$/m);
  assert.match(error.message, /^flag -- <worker argv>: worker\.command: expected a non-empty array of strings/m);
});

test('a bad file value is reported even when the environment overrides it', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', '[memory]\npoll_interval_ms = 1\n');
  const error = expectConfigError(() =>
    loadConfig({ flags: { configPath: file }, env: { AUTOPILOTD_MEMORY_POLL_INTERVAL_MS: '1000' }, homeDir: home.dir, cwd: home.dir }),
  );
  assert.equal(error.problems.length, 1);
  assert.equal(error.problems[0]?.line, 2);
});

test('a file that cannot be parsed skips the pair rules instead of judging half a configuration', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', '[memory\n');
  const error = expectConfigError(() =>
    loadConfig({ flags: { configPath: file }, env: { AUTOPILOTD_MEMORY_MIN_AVAILABLE_BYTES: '512MiB' }, homeDir: home.dir, cwd: home.dir }),
  );
  // One problem, the syntax error (named by its line's table), and no pair-rule problem.
  assert.deepEqual(error.problems.map((p) => p.key), ['memory']);
});

test('a config file that is not UTF-8 is rejected at the bad byte, instead of reaching the worker as U+FFFD (#14)', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', '');
  // "Café" as an editor set to Latin-1 saves it.
  writeFileSync(file, Buffer.concat([Buffer.from('[worker]\nstop_timeout_ms = 2000\nenv = { GREETING = "Caf'), Buffer.from([0xe9]), Buffer.from('" }\n')]));
  const error = expectConfigError(() => loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir }));
  assert.equal(error.exitCode, 78);
  assert.deepEqual(error.problems, [{
    source: 'file', file, line: 3, column: 24, key: 'worker.env.GREETING', expected: 'UTF-8 text', got: 'byte 0xe9', hint: 'save the file as UTF-8',
  }]);
  assert.equal(error.message, `${file}:3:24: worker.env.GREETING: expected UTF-8 text, got byte 0xe9; save the file as UTF-8`);
});

test('a config file that starts with a byte order mark is read, and its columns do not count the mark', (t) => {
  const home = makeTempHome(t);
  const file = home.write('daemon.toml', '\ufeffproject = "p"\n[memory]\npoll_interval_ms = 1000\n');
  const loaded = loadConfig({ flags: { configPath: file }, env: {}, homeDir: home.dir, cwd: home.dir });
  assert.equal(loaded.config.project, 'p');
  assert.equal(loaded.config.memory.poll_interval_ms, 1000);
  const broken = home.write('broken.toml', '\ufeffbogus = 1\n');
  const error = expectConfigError(() => loadConfig({ flags: { configPath: broken }, env: {}, homeDir: home.dir, cwd: home.dir }));
  assert.deepEqual(error.problems.map((p) => [p.key, p.line, p.column]), [['bogus', 1, 1]]);
});
