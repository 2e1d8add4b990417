// The [notify] section: its defaults, each key from the file and the environment, and the problems a
// bad value gives (file:line:column, key, expected, a did-you-mean for a misspelt event kind).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { NOTIFY_EVENT_KINDS } from '../../src/config/types.js';
import { loadHome, makeTempHome, problemsOfHome } from './temp-home.js';

test('notifications are off by default, and every kind but daemon-start is selected', (t) => {
  const notify = loadHome(makeTempHome(t)).config.notify;
  assert.deepEqual(notify, {
    command: null,
    events: ['failed', 'recovered', 'memory', 'health', 'held', 'prevented', 'daemon-stop'],
    timeout_ms: 10_000,
    min_interval_ms: 60_000,
  });
  assert.deepEqual(NOTIFY_EVENT_KINDS.filter((k) => !notify.events.includes(k)), ['daemon-start']);
});

test('[notify] keys load from the file, repeated kinds kept once', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/daemon.toml', [
    '[notify]',
    'command = ["curl", "-fsS", "--data-binary", "@-", "https://example.invalid/hook"]',
    'events = ["failed", "daemon-start", "failed"]',
    'timeout_ms = 2500',
    'min_interval_ms = 0',
    '',
  ].join('\n'));
  assert.deepEqual(loadHome(home).config.notify, {
    command: ['curl', '-fsS', '--data-binary', '@-', 'https://example.invalid/hook'],
    events: ['failed', 'daemon-start'],
    timeout_ms: 2500,
    min_interval_ms: 0,
  });
});

test('[notify] keys load from the environment, lists as JSON', (t) => {
  const notify = loadHome(makeTempHome(t), {
    AUTOPILOTD_NOTIFY_COMMAND: '["sh", "-c", "cat >> /tmp/x"]',
    AUTOPILOTD_NOTIFY_EVENTS: '["memory"]',
    AUTOPILOTD_NOTIFY_TIMEOUT_MS: '1',
    AUTOPILOTD_NOTIFY_MIN_INTERVAL_MS: '5',
  }).config.notify;
  assert.deepEqual(notify, { command: ['sh', '-c', 'cat >> /tmp/x'], events: ['memory'], timeout_ms: 1, min_interval_ms: 5 });
});

test('a misspelt event kind is named by its index, line and column, with the closest kind', (t) => {
  const home = makeTempHome(t);
  const file = home.write('.autopilot/daemon.toml', '[notify]\ncommand = ["true"]\nevents = ["failed", "daemon_stop"]\n');
  assert.deepEqual(problemsOfHome(home), [
    `${file}:3:1: notify.events[1]: expected one of ${NOTIFY_EVENT_KINDS.map((k) => `"${k}"`).join(', ')}, got "daemon_stop"; did you mean "daemon-stop"?`,
  ]);
});

test('an event kind far from any gets no suggestion', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/daemon.toml', '[notify]\nevents = ["everything"]\n');
  const [problem, ...rest] = problemsOfHome(home);
  assert.deepEqual(rest, []);
  assert.match(problem!, /notify\.events\[0\]: expected one of .*, got "everything"$/);
});

test('bad [notify] values: empty command, empty or non-list events, negative and zero timeouts, negative interval', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['command = []', /:2:1: notify\.command: expected a non-empty array of strings \(program and arguments\), got \[\]$/],
    ['command = [""]', /:2:\d+: notify\.command\[0\]: expected a non-empty program name, got ""$/],
    ['command = "curl http://x"', /:2:1: notify\.command: expected an array of strings \(program and arguments\), got "curl http:\/\/x"$/],
    ['events = []', /:2:1: notify\.events: expected a non-empty array of event kinds \(to send none, leave notify\.command unset\), got \[\]$/],
    ['events = "failed"', /:2:1: notify\.events: expected an array of event kinds, each one of .*, got "failed"$/],
    ['timeout_ms = -1', /:2:1: notify\.timeout_ms: expected an integer > 0 \(milliseconds\), got -1$/],
    ['timeout_ms = 0', /:2:1: notify\.timeout_ms: expected an integer > 0 \(milliseconds\), got 0$/],
    ['min_interval_ms = -1', /:2:1: notify\.min_interval_ms: expected an integer >= 0 \(milliseconds\), got -1$/],
    ['min_interval_ms = "60s"', /:2:1: notify\.min_interval_ms: expected an integer >= 0 \(milliseconds\), got "60s"; durations are whole milliseconds, without a unit$/],
  ];
  for (const [line, expected] of cases) {
    const home = makeTempHome(t);
    home.write('.autopilot/daemon.toml', `[notify]\n${line}\n`);
    const problems = problemsOfHome(home);
    assert.equal(problems.length, 1, `${line}: ${problems.join('\n')}`);
    assert.match(problems[0]!, expected, line);
  }
});

test('a misspelt [notify] key suggests the right one', (t) => {
  const home = makeTempHome(t);
  home.write('.autopilot/daemon.toml', '[notify]\ntimeout = 5000\n');
  assert.match(problemsOfHome(home)[0]!, /:2:1: notify\.timeout: unknown key; did you mean "timeout_ms"\?$/);
});
