// The command line as a user types it (issue #19, "CLI habits"), with the real CLI: every error
// path of the parser gives our own message (exit 64, a pointer to the right help, a "did you mean"
// where one is close) and never node:util parseArgs's text; `help <command>`, the `restart` short
// name, and -V/--version and --config before or after the command.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir, runCli, writeConfig, type TempDir } from '../helpers/daemon.js';
import { VERSION } from '../../src/version.js';

// A valid config of its own, so that a usage error cannot be confused with a config error and no
// command reaches a daemon of the machine's user.
let dir: TempDir;
let env: Record<string, string>;
before(() => {
  dir = makeTempDir();
  env = { AUTOPILOTD_CONFIG: writeConfig(dir.path, '') };
});
after(() => dir.cleanup());

/** What node:util parseArgs says in its own words; none of it may reach the user. */
const PARSER_TEXT = /To specify a positional|argument is ambiguous|Did you forget|ERR_PARSE_ARGS|Unknown option|Unexpected argument|argument missing|<value>/;

// [what, argv, the error line after "autopilotd: ", the help it points to]
const errors: [string, string[], string, string][] = [
  ['a mistyped command', ['statsu'], "unknown command 'statsu'; did you mean 'status'?", '--help'],
  ['a mistyped short name', ['restrat'], "unknown command 'restrat'; did you mean 'restart'?", '--help'],
  ['a command nothing is close to', ['frobnicate'], "unknown command 'frobnicate'", '--help'],
  ['a word that is a property of every object', ['__proto__'], "unknown command '__proto__'", '--help'],
  ['help for a mistyped command', ['help', 'statsu'], "unknown command 'statsu'; did you mean 'status'?", '--help'],
  ['help for two commands', ['help', 'stop', 'status'], "help: one command at a time, got 'stop status'", '--help'],
  ['help with words after --', ['help', '--', 'stop'], 'help takes no arguments after --', '--help'],
  ['a worker argv without start', ['--', 'sleep', '1'], 'no command before --; the worker argv goes after start: autopilotd start -- <argv...>', '--help'],
  ['options and no command', ['--config', 'x.toml'], 'no command given (autopilotd --help lists them)', '--help'],
  ['an unknown option before the command', ['--frob', 'status'], "unknown option '--frob'", 'help status'],
  ['an unknown option and no command', ['--frob'], "unknown option '--frob'", '--help'],
  ["a command's own option before it", ['--json', 'status'], "'--json' is an option of status: put it after the command (autopilotd status --json)", 'help status'],
  ['a mistyped flag', ['status', '--jsno'], "status: unknown option '--jsno'; did you mean '--json'?", 'help status'],
  ['a mistyped flag with a value', ['stop', '--timout=5s'], "stop: unknown option '--timout'; did you mean '--timeout'?", 'help stop'],
  ['a mistyped global flag', ['status', '--confg', 'x'], "status: unknown option '--confg'; did you mean '--config'?", 'help status'],
  ["another command's flag", ['status', '--follow'], "status: unknown option '--follow' (an option of logs, events)", 'help status'],
  ['the internal flag is never suggested', ['start', '--daemonize'], "start: unknown option '--daemonize'", 'help start'],
  ['an unknown short option', ['logs', '-x'], "logs: unknown option '-x'", 'help logs'],
  ['an unknown short option in a group', ['logs', '-fx'], "logs: unknown option '-x' in '-fx'", 'help logs'],
  ['a property of every object as a flag', ['status', '--constructor'], "status: unknown option '--constructor'", 'help status'],
  ['a value for a flag that takes none', ['status', '--json=yes'], "status: --json takes no value, got '--json=yes'", 'help status'],
  ['a value for --version', ['--version=2'], "--version takes no value, got '--version=2'", '--help'],
  ['a missing value at the end', ['status', '--config'], 'status: --config needs a value (--config PATH)', 'help status'],
  ['a missing value before the command', ['--config'], '--config needs a value (--config PATH)', '--help'],
  ['a missing value of a short option', ['logs', '-n'], 'logs: -n needs a value (-n N)', 'help logs'],
  ['an option where the value should be', ['status', '--config', '--json'], "status: --config needs a value (--config PATH), not the option '--json'; if that is the value, write --config=--json", 'help status'],
  ['a stray word', ['status', 'now'], "status: unexpected argument 'now'", 'help status'],
  ['a flag without its dashes', ['status', 'json'], "status: unexpected argument 'json'; did you mean '--json'?", 'help status'],
  ['words after -- for a command other than start', ['restart', '--', 'x'], 'restart takes no arguments after --', 'help restart'],
  ['nothing after -- for start', ['start', '--'], 'start: nothing after --; give the worker command or leave out --', 'help start'],
  ['a bad instance name', ['status', '--instance', 'a/b'], 'status: --instance: instance name "a/b" is not valid: expected 1 to 64 letters, digits, \'_\', \'.\' or \'-\', starting with a letter or digit', 'help status'],
  ['a mistyped config action', ['config', 'chek'], "config: unknown action 'chek' (check or show); did you mean 'check'?", 'help config'],
  ['a config action too many', ['config', 'check', 'now'], "config: unexpected argument 'now'", 'help config'],
  ['a bad DURATION', ['stop', '--timeout', 'soon'], "stop: --timeout: expected a DURATION, a number and a unit, ms, s, m or h (500ms, 30s, 2m, 1h); a bare number is seconds; got 'soon'", 'help stop'],
];

for (const [what, argv, message, help] of errors) {
  test(`${what} (${argv.join(' ')}): exit 64, our message, and the help to read`, async () => {
    const r = await runCli(argv, { env });
    assert.equal(r.code, 64, r.stderr);
    assert.equal(r.stderr, `autopilotd: ${message}\nTry 'autopilotd ${help}'.\n`);
    assert.doesNotMatch(r.stderr, PARSER_TEXT);
    assert.equal(r.stdout, '');
  });
}

test('help <command> prints what <command> --help prints; help alone and help help print the main help', async () => {
  const main = await runCli(['--help'], { env });
  assert.equal(main.code, 0);
  for (const argv of [[], ['help'], ['help', 'help'], ['-h']]) {
    const r = await runCli(argv, { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, main.stdout, argv.join(' '));
  }
  for (const cmd of ['start', 'stop', 'status', 'restart-worker', 'stop-worker', 'start-worker', 'reload', 'logs', 'config', 'install-service', 'uninstall-service']) {
    const viaHelp = await runCli(['help', cmd], { env });
    const viaFlag = await runCli([cmd, '--help'], { env });
    assert.equal(viaHelp.code, 0, viaHelp.stderr);
    assert.match(viaHelp.stdout, new RegExp(`^Usage: autopilotd ${cmd}`));
    assert.equal(viaHelp.stdout, viaFlag.stdout, cmd);
  }
});

test('help stop documents --timeout as a DURATION, as the main help defines it', async () => {
  const stop = await runCli(['help', 'stop'], { env });
  assert.equal(stop.code, 0);
  assert.match(stop.stdout, /^Usage: autopilotd stop \[--timeout DURATION\]/);
  assert.match(stop.stdout, /DURATION: a number and a unit, ms, s, m or h \(500ms, 30s, 2m, 1h\); a bare number is seconds\./);
  const main = await runCli(['--help'], { env });
  assert.match(main.stdout, /\nDURATION: a number and a unit, ms, s, m or h \(500ms, 30s, 2m, 1h\); a bare number is seconds\.\n/);
  assert.doesNotMatch(`${main.stdout}${stop.stdout}`, /SECONDS/);
});

test('restart is the short name of restart-worker, in help too', async () => {
  const main = await runCli(['--help'], { env });
  assert.match(main.stdout, /\n {2}restart-worker .*short: restart\n/);
  const short = await runCli(['help', 'restart'], { env });
  const long = await runCli(['help', 'restart-worker'], { env });
  assert.equal(short.code, 0);
  assert.equal(short.stdout, long.stdout);
  assert.equal((await runCli(['restart', '--help'], { env })).stdout, long.stdout);
});

test('-V and --version print the version before or after the command, and as a command', async () => {
  for (const argv of [['-V'], ['--version'], ['version'], ['-V', 'status'], ['status', '-V'], ['status', '--version'], ['--config', 'x.toml', 'stop', '-V']]) {
    const r = await runCli(argv, { env });
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, `autopilotd ${VERSION}\n`, argv.join(' '));
  }
});

test('a bad option value is a usage error (64) even when the config file is missing: it is judged before any config is read', async () => {
  for (const [argv, says] of [
    [['stop', '--timeout', '5x'], /^autopilotd: stop: --timeout: expected a DURATION, /],
    [['status', '--interval', '1s'], /^autopilotd: status: --interval goes with --watch\n/],
    [['status', '--watch', '--interval', '10ms'], /^autopilotd: status: --interval: at least 100ms, got '10ms'\n/],
    [['logs', '--since', 'bad'], /^autopilotd: logs: --since expects a DURATION ago /],
    [['logs', '--stream', 'foo'], /^autopilotd: logs: --stream expects stdout or stderr, got 'foo'\n/],
    [['logs', '-n', 'abc'], /^autopilotd: logs: -n expects a whole number, got 'abc'\n/],
  ] as const) {
    for (const config of [['--config', '/nonexistent/x.toml'], []]) {
      const r = await runCli([...argv, ...config], { env: config.length === 0 ? { AUTOPILOTD_CONFIG: '/nonexistent/x.toml' } : env });
      assert.equal(r.code, 64, `${argv.join(' ')} ${config.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, says, argv.join(' '));
    }
  }
});
