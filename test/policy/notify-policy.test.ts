// The notification policy with explicit times: one command at a time per kind, min_interval_ms per
// kind, suppressed ones counted into the next message, kinds apart from each other, unselected kinds
// dropped, and a `finished` with nothing running reported as can't-happen.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialNotifyState, stepNotify, type NotifyEffect, type NotifyInput, type NotifySettings, type NotifyState } from '../../src/policy/notify-policy.js';

const ALL = ['failed', 'recovered', 'memory', 'health', 'held', 'prevented', 'daemon-start', 'daemon-stop'];
const SETTINGS: NotifySettings = { events: ALL, min_interval_ms: 60_000 };

const occurred = (notifyKind: string, atMs: number): NotifyInput => ({ kind: 'occurred', notifyKind, atMs });
const finished = (notifyKind: string, atMs: number): NotifyInput => ({ kind: 'finished', notifyKind, atMs });

/** Runs the inputs in order; returns each step's effects and the last state. */
function run(inputs: NotifyInput[], settings = SETTINGS, from: NotifyState = initialNotifyState()): { effects: NotifyEffect[][]; state: NotifyState } {
  let state = from;
  const effects: NotifyEffect[][] = [];
  for (const input of inputs) {
    const step = stepNotify(state, input, settings);
    state = step.state;
    effects.push(step.effects);
  }
  return { effects, state };
}

const runs = (kind: string, suppressed = 0): NotifyEffect[] => [{ kind: 'run', notifyKind: kind, suppressed }];
const left = (kind: string, reason: 'running' | 'rate-limited', suppressed: number): NotifyEffect[] => [{ kind: 'suppressed', notifyKind: kind, reason, suppressed }];

const TABLE: Array<{ name: string; inputs: NotifyInput[]; expected: NotifyEffect[][]; settings?: NotifySettings }> = [
  {
    name: 'the first event of a kind runs at once, at any time',
    inputs: [occurred('failed', 0)],
    expected: [runs('failed')],
  },
  {
    name: 'a second event while the first command still runs is left out and counted',
    inputs: [occurred('failed', 0), occurred('failed', 70_000), finished('failed', 70_001), occurred('failed', 140_000)],
    expected: [runs('failed'), left('failed', 'running', 1), [], runs('failed', 1)],
  },
  {
    name: 'within min_interval_ms of the last start it is rate-limited, counted, and the count goes out with the next',
    inputs: [
      occurred('failed', 1_000), finished('failed', 1_500),
      occurred('failed', 2_000), occurred('failed', 60_999),
      occurred('failed', 61_000), finished('failed', 61_100),
      occurred('failed', 200_000),
    ],
    expected: [runs('failed'), [], left('failed', 'rate-limited', 1), left('failed', 'rate-limited', 2), runs('failed', 2), [], runs('failed', 0)],
  },
  {
    name: 'the interval counts from the last command that ran, not from the last event left out',
    inputs: [occurred('memory', 0), finished('memory', 10), occurred('memory', 59_000), occurred('memory', 60_000)],
    expected: [runs('memory'), [], left('memory', 'rate-limited', 1), runs('memory', 1)],
  },
  {
    name: 'a command still running past min_interval_ms keeps the next one out (never two at once)',
    inputs: [occurred('health', 0), occurred('health', 120_000), occurred('health', 300_000), finished('health', 300_001), occurred('health', 300_002)],
    expected: [runs('health'), left('health', 'running', 1), left('health', 'running', 2), [], runs('health', 2)],
  },
  {
    name: 'kinds are limited apart: one kind running or recent does not hold back another',
    inputs: [occurred('failed', 0), occurred('memory', 1), occurred('failed', 2), occurred('recovered', 3), finished('failed', 4), occurred('memory', 5)],
    expected: [runs('failed'), runs('memory'), left('failed', 'running', 1), runs('recovered'), [], left('memory', 'running', 1)],
  },
  {
    name: 'min_interval_ms = 0: only the one-at-a-time rule holds',
    settings: { events: ALL, min_interval_ms: 0 },
    inputs: [occurred('failed', 0), occurred('failed', 0), finished('failed', 0), occurred('failed', 0)],
    expected: [runs('failed'), left('failed', 'running', 1), [], runs('failed', 1)],
  },
  {
    name: 'a kind not in `events` is dropped without a count, and does not count against the others',
    settings: { events: ['failed'], min_interval_ms: 60_000 },
    inputs: [occurred('daemon-start', 0), occurred('memory', 1), occurred('failed', 2), finished('failed', 3), occurred('failed', 100_000)],
    expected: [[], [], runs('failed'), [], runs('failed', 0)],
  },
  {
    name: 'a finished with no command running is a can\'t-happen and changes nothing',
    inputs: [finished('failed', 0), occurred('failed', 1), finished('failed', 2), finished('failed', 3)],
    expected: [
      [{ kind: 'unexpected', message: 'notify command for failed finished, but none was running' }],
      runs('failed'), [],
      [{ kind: 'unexpected', message: 'notify command for failed finished, but none was running' }],
    ],
  },
];

for (const row of TABLE) {
  test(row.name, () => {
    assert.deepEqual(run(row.inputs, row.settings).effects, row.expected);
  });
}

test('the state is not changed in place: an earlier state steps the same way again', () => {
  const first = stepNotify(initialNotifyState(), occurred('failed', 0), SETTINGS);
  const snapshot = structuredClone(first.state);
  stepNotify(first.state, occurred('failed', 1), SETTINGS);
  stepNotify(first.state, finished('failed', 2), SETTINGS);
  assert.deepEqual(first.state, snapshot);
  assert.deepEqual(stepNotify(first.state, occurred('failed', 1), SETTINGS).effects, left('failed', 'running', 1));
});

test('the counter after many suppressed events is exact', () => {
  const inputs: NotifyInput[] = [occurred('failed', 0), finished('failed', 1)];
  for (let i = 1; i <= 250; i++) inputs.push(occurred('failed', 1 + i * 100));
  inputs.push(occurred('failed', 60_000));
  const { effects, state } = run(inputs);
  assert.deepEqual(effects.at(-1), runs('failed', 250));
  assert.deepEqual(state.failed, { running: true, lastRunAtMs: 60_000, suppressed: 0 });
});

test('a clock that reads earlier than the last run (a reused state) counts as too soon, not as a run', () => {
  const { effects } = run([occurred('failed', 10_000), finished('failed', 10_001), occurred('failed', 5_000)]);
  assert.deepEqual(effects[2], left('failed', 'rate-limited', 1));
});
