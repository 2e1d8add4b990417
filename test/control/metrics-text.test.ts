// The Prometheus text of `autopilotd metrics` and GET /metrics, from a status and counters: names,
// types, units, labels and escaping, checked by Prometheus's own parser (`promtool check metrics`).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricFamilies, renderExposition, renderMetrics, type MetricsInput } from '../../src/control/metrics-text.js';
import type { StatusData } from '../../src/control/protocol.js';
import { hasPromtool, PROMTOOL_MISSING, promtoolCheck } from '../helpers/promtool.js';

const promtool = hasPromtool() ? {} : { skip: PROMTOOL_MISSING };

function status(over: Partial<StatusData> = {}): StatusData {
  return {
    daemon: { pid: 10, version: '0.1.0', started_at: '2025-01-01T00:00:00.000Z', uptime_ms: 90_500, config_path: null, log_target: 'stderr', native: { loaded: true, reason: null } },
    worker: {
      state: 'backoff', pid: null, generation: 4, started_at: null, uptime_ms: null, command: ['w'], consecutive_failures: 2,
      next_restart_at: '2025-01-01T00:02:00.000Z', last_exit: null,
    },
    restarts: { total: 5, crash: 2, memory: 1, operator: 1, health: 1, hold: 0, recycle: 0 },
    memory: {
      level: 'low', available_bytes: 1_500_000_000, psi: { some_avg10: 12.5, full_avg10: null }, tree_rss_bytes: 300_000_000, tree_swap_bytes: 40_000_000, tree_processes: 3,
      top: [], last_action: null,
    },
    ...over,
  };
}

function input(over: Partial<MetricsInput> = {}): MetricsInput {
  return {
    status: status(),
    counters: {
      memoryActions: { kill: 2, 'restart-worker': 1 }, memoryKillEscalations: 1, healthRestarts: { stall: 1, heartbeat: 0, probe: 0 },
      notifyRuns: { failed: 3, memory: 0 }, notifyFailures: { failed: 1, memory: 0 }, notifySuppressed: { failed: 4, memory: 0 },
      controlRejected: { busy: 2, bad_json: 1 }, logLinesDropped: 7, events: 120,
    },
    control: { openConnections: 3, acceptedConnections: 40, subscribers: 1, droppedSubscribers: 0 },
    daemonProcess: { rssBytes: 45_000_000, cpuSeconds: 1.25, nodeVersion: 'v20.1.0' },
    ...over,
  };
}

/** The samples of the text as `name{labels} value` lines, without HELP/TYPE. */
const samples = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

test('a full status renders as exposition text promtool accepts without a lint warning', promtool, () => {
  const check = promtoolCheck(renderMetrics(input()));
  assert.ok(check.ok, check.output);
});

test('before the first memory sample and the control socket, the text is still valid and says nothing it does not know', promtool, () => {
  const text = renderMetrics(input({ status: status({ memory: null }), control: null }));
  const check = promtoolCheck(text);
  assert.ok(check.ok, check.output);
  assert.doesNotMatch(text, /^autopilotd_(memory_level|memory_available_bytes|worker_tree_rss_bytes|control_connections_open)[ {]/m);
  assert.match(text, /^# TYPE autopilotd_memory_available_bytes gauge$/m, 'the family is still declared');
});

test('every family is autopilotd_*, has HELP and TYPE, and counters end in _total; units are in the names', () => {
  const families = metricFamilies(input());
  for (const f of families) {
    assert.match(f.name, /^autopilotd_[a-z0-9_]+$/);
    assert.ok(f.help.length > 10, f.name);
    assert.equal(f.type === 'counter', f.name.endsWith('_total'), `${f.name} is a ${f.type}`);
  }
  const names = families.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, 'no family twice');
  for (const name of ['autopilotd_daemon_uptime_seconds', 'autopilotd_daemon_resident_memory_bytes', 'autopilotd_daemon_cpu_seconds_total', 'autopilotd_memory_available_bytes', 'autopilotd_worker_tree_rss_bytes']) {
    assert.ok(names.includes(name), name);
  }
});

test('the figures: one worker_state sample per state with 1 for the current, restarts by cause, ratios for PSI', () => {
  const lines = samples(renderMetrics(input()));
  const states = lines.filter((l) => l.startsWith('autopilotd_worker_state{'));
  assert.deepEqual(states, ['starting', 'running', 'backoff', 'stopping', 'stopped', 'failed', 'held'].map((s) => `autopilotd_worker_state{state="${s}"} ${s === 'backoff' ? 1 : 0}`));
  for (const expected of [
    'autopilotd_worker_generation 4',
    'autopilotd_worker_consecutive_failures 2',
    'autopilotd_worker_restarts_total{cause="crash"} 2',
    'autopilotd_worker_restarts_total{cause="health"} 1',
    'autopilotd_memory_level{level="low"} 1',
    'autopilotd_memory_level{level="ok"} 0',
    'autopilotd_memory_available_bytes 1500000000',
    'autopilotd_memory_psi_some_avg10_ratio 0.125',
    'autopilotd_worker_tree_rss_bytes 300000000',
    'autopilotd_worker_tree_processes 3',
    'autopilotd_memory_actions_total{kind="kill"} 2',
    'autopilotd_memory_actions_total{kind="restart-worker"} 1',
    'autopilotd_health_restarts_total{signal="stall"} 1',
    'autopilotd_notify_runs_total{event="failed"} 3',
    'autopilotd_notify_failures_total{event="failed"} 1',
    'autopilotd_control_connections_open 3',
    'autopilotd_control_rejected_total{code="busy"} 2',
    'autopilotd_log_lines_dropped_total 7',
    'autopilotd_daemon_uptime_seconds 90.5',
    'autopilotd_daemon_cpu_seconds_total 1.25',
    'autopilotd_build_info{version="0.1.0",node="v20.1.0"} 1',
  ]) assert.ok(lines.includes(expected), `${expected}\n${lines.join('\n')}`);
  assert.ok(!lines.some((l) => l.includes('cause="total"')), 'the total is no cause');
  assert.ok(!lines.some((l) => l.startsWith('autopilotd_memory_psi_full_avg10_ratio ')), 'full avg10 unknown: no sample');
  assert.ok(!lines.some((l) => l.startsWith('autopilotd_worker_uptime_seconds ')), 'no run: no uptime');
});

test('swap is shown when the status has memory.tree_swap_bytes, and a cause the daemon adds becomes a label', () => {
  const withSwap = status();
  withSwap.memory!.tree_swap_bytes = 4096;
  Object.assign(withSwap.restarts, { oom: 2 });
  const lines = samples(renderMetrics(input({ status: withSwap })));
  assert.ok(lines.includes('autopilotd_worker_tree_swap_bytes 4096'));
  assert.ok(lines.includes('autopilotd_worker_restarts_total{cause="oom"} 2'));
  assert.ok(samples(renderMetrics(input())).includes('autopilotd_worker_tree_swap_bytes 40000000'));
});

test('swap unknown (or no memory sample yet): the family is still declared, with no sample, like the other gauges', () => {
  const noSwap = status();
  noSwap.memory!.tree_swap_bytes = null;
  for (const text of [renderMetrics(input({ status: noSwap })), renderMetrics(input({ status: status({ memory: null }) }))]) {
    assert.match(text, /^# HELP autopilotd_worker_tree_swap_bytes .+\n# TYPE autopilotd_worker_tree_swap_bytes gauge$/m);
    assert.doesNotMatch(text, /^autopilotd_worker_tree_swap_bytes /m);
    assert.match(text, /^# TYPE autopilotd_worker_tree_rss_bytes gauge$/m);
  }
});

test('label values and HELP are escaped as format 0.0.4 says, and special values are spelt out', () => {
  const text = renderExposition([
    { name: 'x_info', help: 'back\\slash\nnewline', type: 'gauge', samples: [{ labels: { v: 'a"b\\c\nd' }, value: 1 }] },
    { name: 'y', help: 'values', type: 'gauge', samples: [{ value: Number.NaN }, { value: Infinity }, { value: -Infinity }, { value: 1e21 }] },
  ]);
  assert.equal(text, [
    '# HELP x_info back\\\\slash\\nnewline',
    '# TYPE x_info gauge',
    'x_info{v="a\\"b\\\\c\\nd"} 1',
    '# HELP y values',
    '# TYPE y gauge',
    'y NaN',
    'y +Inf',
    'y -Inf',
    'y 1e+21',
    '',
  ].join('\n'));
});

test('an odd version string still gives text promtool parses', promtool, () => {
  const s = status();
  s.daemon.version = '1.0.0-"rc"\\x\ny';
  const check = promtoolCheck(renderMetrics(input({ status: s })));
  assert.ok(check.ok, check.output);
});
