import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatus } from '../../src/daemon/status.js';
import { initialWorkerModel } from '../../src/policy/worker-state.js';
import { formatStatus, treeLines, TREE_LINES } from '../../src/cli/format-status.js';
import { DEFAULTS } from '../../src/config/defaults.js';

const t0 = Date.parse('2026-11-25T10:00:00.000Z');

const LOADED = { loaded: true, reason: null };

/** What the older tests do not look at: the defaults, no spawn error, no tree sample. */
const EXTRA = { config: DEFAULTS, lastSpawnError: null, treeListing: null };

test('status carries the documented fields with ISO times and ms durations', () => {
  const worker = {
    // The model's times are on the monotonic clock; the dates come from the wall times noted beside it.
    ...initialWorkerModel(), state: 'running' as const, pid: 77, generation: 4, startedAtMs: 21_000,
    consecutiveFailures: 2, lastExit: { code: 1, signal: null, atMs: 20_500, uptimeMs: 300, asked: null },
    restarts: { total: 3, crash: 2, oom: 0, memory: 1, operator: 0, health: 0, hold: 0, recycle: 0 },
  };
  const workerClock = { nowMs: 25_000, startedAtWallMs: t0 + 1000, lastExitAtWallMs: t0 + 500 };
  const s = buildStatus({ ...EXTRA, nowMs: t0 + 5000, daemon: { pid: 10, version: '9.9.9', startedAtMs: t0, configPath: '/c.toml', logTarget: 'journald', native: LOADED }, worker, workerClock, command: ['node', 'w'], memory: null });
  assert.deepEqual(s, {
    daemon: { pid: 10, version: '9.9.9', started_at: '2026-11-25T10:00:00.000Z', uptime_ms: 5000, config_path: '/c.toml', log_target: 'journald', native: { loaded: true, reason: null } },
    worker: {
      state: 'running', pid: 77, generation: 4, started_at: '2026-11-25T10:00:01.000Z', uptime_ms: 4000, command: ['node', 'w'],
      consecutive_failures: 2, next_restart_at: null,
      last_exit: { code: 1, signal: null, at: '2026-11-25T10:00:00.500Z', uptime_ms: 300, asked: null, tail: [] },
      working_dir: DEFAULTS.working_dir, stop_timeout_ms: 10_000, restart: 'always',
      backoff: { initial_backoff_ms: 1000, max_backoff_ms: 300_000, backoff_multiplier: 2, max_consecutive_restarts: 10, stable_after_ms: 60_000 },
      last_spawn_error: null,
    },
    restarts: { total: 3, crash: 2, oom: 0, memory: 1, operator: 0, health: 0, hold: 0, recycle: 0 },
    memory: null,
    tree: { backend: 'proc', cgroup: null, leaf: null, processes: [], processes_left_out: 0 },
    memory_limits: {
      worker_max_bytes: DEFAULTS.memory.worker_max_bytes, min_available_bytes: DEFAULTS.memory.min_available_bytes,
      critical_threshold_bytes: DEFAULTS.memory.critical_threshold_bytes, node_kill_threshold_bytes: DEFAULTS.memory.node_kill_threshold_bytes,
      psi_some_avg10: DEFAULTS.memory.psi_some_avg10,
    },
  });
});

test('without the native helper, status says why in one line of the summary (#16)', () => {
  const native = { loaded: false, reason: 'disabled by _AUTOPILOTD_NO_NATIVE=1' };
  const s = buildStatus({ ...EXTRA,
    nowMs: t0, daemon: { pid: 10, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native },
    worker: initialWorkerModel(), workerClock: { nowMs: 0, startedAtWallMs: null, lastExitAtWallMs: null }, command: ['x'], memory: null,
  });
  assert.deepEqual(s.daemon.native, native);
  const lines = formatStatus(s, t0).split('\n').filter((l) => l.includes('native'));
  assert.deepEqual(lines, ['  native:    not loaded (disabled by _AUTOPILOTD_NO_NATIVE=1); sd_notify goes through systemd-notify']);
  const loaded = buildStatus({ ...EXTRA,
    nowMs: t0, daemon: { pid: 10, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native: LOADED },
    worker: initialWorkerModel(), workerClock: { nowMs: 0, startedAtWallMs: null, lastExitAtWallMs: null }, command: ['x'], memory: null,
  });
  assert.doesNotMatch(formatStatus(loaded, t0), /native/, 'nothing to say when it is loaded');
});

test('a worker waiting in backoff has no pid or uptime but a next restart time', () => {
  const worker = { ...initialWorkerModel(), state: 'backoff' as const, generation: 2, startedAtMs: 100, nextStartAtMs: 8100 };
  const workerClock = { nowMs: 5100, startedAtWallMs: t0, lastExitAtWallMs: null };
  const s = buildStatus({ ...EXTRA, nowMs: t0 + 5000, daemon: { pid: 10, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native: LOADED }, worker, workerClock, command: ['x'], memory: null });
  assert.equal(s.worker.pid, null);
  assert.equal(s.worker.uptime_ms, null);
  assert.equal(s.worker.next_restart_at, '2026-11-25T10:00:08.000Z');
  const text = formatStatus(s, t0 + 5000);
  assert.match(text, /worker: +backoff, generation 2/);
  assert.match(text, /next start: in 3\.0s/);
  assert.match(text, /config: +\(built-in defaults\)/);
});

test('the human summary shows memory, the largest processes and the last action', () => {
  const s = buildStatus({ ...EXTRA,
    nowMs: t0 + 60_000, daemon: { pid: 1, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native: LOADED },
    worker: { ...initialWorkerModel(), state: 'running', pid: 5, startedAtMs: 0 }, command: ['x'],
    workerClock: { nowMs: 60_000, startedAtWallMs: t0, lastExitAtWallMs: null },
    memory: {
      level: 'low', available_bytes: 1024 ** 3, psi: { some_avg10: 1.5, full_avg10: 0.2 }, tree_rss_bytes: 300 * 1024 ** 2, tree_processes: 4,
      tree_swap_bytes: 0,
      top: [{ pid: 9, comm: 'node', rss_bytes: 200 * 1024 ** 2, swap_bytes: 0 }],
      last_action: { kind: 'kill', reason: 'low', pid: 9, comm: 'node', rss_bytes: 600 * 1024 ** 2, swap_bytes: 0, at: new Date(t0 + 30_000).toISOString() },
    },
  });
  const text = formatStatus(s, t0 + 60_000);
  assert.match(text, /memory: +low; available 1\.0 GiB; pressure some 1\.50%; worker tree 300\.0 MiB in 4 processes/);
  assert.match(text, /largest: +node\[9\] 200\.0 MiB$/m);
  assert.match(text, /last memory action: kill node\[9\] 600\.0 MiB \(low\), 30s ago/);
  assert.doesNotMatch(text, /swap/, 'no swap, nothing said of it');
});

test('the human summary shows swap beside each RSS when some is swapped out', () => {
  const s = buildStatus({ ...EXTRA,
    nowMs: t0 + 60_000, daemon: { pid: 1, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native: LOADED },
    worker: { ...initialWorkerModel(), state: 'running', pid: 5, startedAtMs: 0 }, command: ['x'],
    workerClock: { nowMs: 60_000, startedAtWallMs: t0, lastExitAtWallMs: null },
    memory: {
      level: 'critical', available_bytes: 1024 ** 3, psi: null, tree_rss_bytes: 300 * 1024 ** 2, tree_swap_bytes: 7 * 1024 ** 3, tree_processes: 4,
      top: [{ pid: 9, comm: 'claude', rss_bytes: 200 * 1024 ** 2, swap_bytes: 7 * 1024 ** 3 }, { pid: 5, comm: 'node', rss_bytes: 90 * 1024 ** 2, swap_bytes: 0 }],
      last_action: { kind: 'kill', reason: 'critical', pid: 9, comm: 'claude', rss_bytes: 200 * 1024 ** 2, swap_bytes: 7 * 1024 ** 3, at: new Date(t0 + 30_000).toISOString() },
    },
  });
  const text = formatStatus(s, t0 + 60_000);
  assert.match(text, /worker tree 300\.0 MiB \(\+7\.0 GiB swap\) in 4 processes/);
  assert.match(text, /largest: +claude\[9\] 200\.0 MiB \(\+7\.0 GiB swap\), node\[5\] 90\.0 MiB$/m);
  assert.match(text, /last memory action: kill claude\[9\] 200\.0 MiB \(\+7\.0 GiB swap\) \(critical\), 30s ago/);
});

test('a wall-clock step changes neither the worker\'s uptime nor when its restart comes (#15)', () => {
  // The wall clock was stepped back an hour after the spawn; the monotonic clock ran on 4 s.
  const worker = { ...initialWorkerModel(), state: 'running' as const, pid: 7, generation: 1, startedAtMs: 1000 };
  const s = buildStatus({ ...EXTRA,
    nowMs: t0 - 3_600_000, daemon: { pid: 10, version: '1', startedAtMs: t0 - 3_600_000, configPath: null, logTarget: 'stderr', native: LOADED },
    worker, workerClock: { nowMs: 5000, startedAtWallMs: t0, lastExitAtWallMs: null }, command: ['x'], memory: null,
  });
  assert.equal(s.worker.uptime_ms, 4000);
  assert.equal(s.worker.started_at, '2026-11-25T10:00:00.000Z', 'the date noted at the spawn');
});

test('a held worker shows its end time and why; its crash context is listed under the last exit, escaped, with streams', () => {
  const worker = {
    ...initialWorkerModel(), state: 'held' as const, generation: 3, consecutiveFailures: 1, nextStartAtMs: 3_605_000,
    lastExit: { code: 75, signal: null, atMs: 5000, uptimeMs: 4000, asked: 'hold' as const },
    restarts: { total: 1, crash: 0, oom: 0, memory: 0, operator: 0, health: 0, hold: 1, recycle: 0 },
  };
  const tail = [
    { stream: 'stdout' as const, line: 'working', cut: false },
    { stream: 'stderr' as const, line: 'usage limit reached\x1b[2J', cut: false },
    { stream: 'stderr' as const, line: 'x'.repeat(4096), cut: true },
  ];
  const s = buildStatus({ ...EXTRA,
    nowMs: t0, daemon: { pid: 10, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native: LOADED },
    worker, workerClock: { nowMs: 5000, startedAtWallMs: null, lastExitAtWallMs: t0 }, command: ['x'], memory: null, lastExitTail: tail,
  });
  assert.equal(s.worker.state, 'held');
  assert.equal(s.worker.next_restart_at, new Date(t0 + 3_600_000).toISOString());
  assert.equal(s.worker.last_exit?.asked, 'hold');
  assert.deepEqual(s.worker.last_exit?.tail, tail);
  assert.equal(s.restarts.hold, 1);
  const text = formatStatus(s, t0);
  assert.match(text, /worker: +held, generation 3/);
  assert.match(text, /last exit: code 75 after 4\.0s, 0\.0s ago; the worker asked to be held \(hold_exit_codes\): start-worker ends the hold/);
  assert.match(text, /next start: in 1h 0m \(held until 2026-11-25T11:00:00\.000Z\)/);
  assert.match(text, /restarts: +1 \(crash 0, oom 0, memory 0, operator 0, health 0, hold 1, recycle 0\)/);
  const lines = text.split('\n');
  const at = lines.indexOf('  output before it (last 3 lines):');
  assert.ok(at > 0, text);
  assert.equal(lines[at + 1], '    out| working');
  assert.equal(lines[at + 2], '    err| usage limit reached\\x1b[2J', 'control characters are escaped');
  assert.ok(lines[at + 3]!.endsWith(' [cut at 4 KiB]'));
});

test('a worker stopped by its prevent code says that it asked for it', () => {
  const worker = { ...initialWorkerModel(), generation: 2, lastExit: { code: 3, signal: null, atMs: 5000, uptimeMs: 100, asked: 'prevent' as const } };
  const s = buildStatus({ ...EXTRA,
    nowMs: t0, daemon: { pid: 10, version: '1', startedAtMs: t0, configPath: null, logTarget: 'stderr', native: LOADED },
    worker, workerClock: { nowMs: 5000, startedAtWallMs: null, lastExitAtWallMs: t0 }, command: ['x'], memory: null,
  });
  assert.equal(s.worker.state, 'stopped');
  assert.deepEqual(s.worker.last_exit?.tail, []);
  assert.match(formatStatus(s, t0), /last exit: code 3 after 0\.1s, 0\.0s ago; the worker asked not to be restarted \(prevent_exit_codes\): start-worker starts it/);
  assert.doesNotMatch(formatStatus(s, t0), /output before it/);
});

test('the worker tree prints as a tree: children under their parent, capped with "... N more"', () => {
  const proc = (pid: number, ppid: number, command: string[], rss = 1024 * 1024) => ({ pid, ppid, comm: command[0] ?? 'z', command, rss_bytes: rss });
  // Out of order on purpose: the listing follows parents, not pids.
  const processes = [proc(100, 1, ['node', 'w.js']), proc(300, 200, ['sleep', '9']), proc(200, 100, ['sh', '-c', 'x']), proc(150, 100, [], 0)];
  const lines = treeLines({ backend: 'proc', cgroup: null, leaf: null, processes, processes_left_out: 0 });
  assert.deepEqual(lines, [
    '  processes:',
    '        100    1.0 MiB  node w.js',
    '        150        0 B  \\_ [z]',
    '        200    1.0 MiB  \\_ sh -c x',
    '        300    1.0 MiB     \\_ sleep 9',
  ]);
  const many = [proc(100, 1, ['node']), ...Array.from({ length: 30 }, (_, i) => proc(1000 + i, 100, ['child']))];
  const capped = treeLines({ backend: 'proc', cgroup: null, leaf: null, processes: many, processes_left_out: 5 });
  assert.equal(capped.length, 1 + TREE_LINES + 1);
  assert.equal(capped.at(-1), '    ... 16 more', '31 listed, 20 shown, and 5 the daemon left out');
  assert.deepEqual(treeLines({ backend: 'proc', cgroup: null, leaf: null }), [], 'an older daemon sends no processes');
});

test('status says the log target, working_dir, restart policy, memory limits and the last spawn error', () => {
  const config = { ...DEFAULTS, working_dir: '/srv/w', memory: { ...DEFAULTS.memory, worker_max_bytes: 4 * 1024 ** 3 } };
  const s = buildStatus({
    ...EXTRA, config, lastSpawnError: { atWallMs: t0 - 3000, message: 'working_dir /srv/w is not usable (ENOENT)' },
    nowMs: t0, daemon: { pid: 10, version: '1', startedAtMs: t0, configPath: null, logTarget: '/var/log/a.log', native: LOADED },
    worker: initialWorkerModel(), workerClock: { nowMs: 0, startedAtWallMs: null, lastExitAtWallMs: null }, command: ['x'], memory: null,
  });
  assert.deepEqual(s.worker.last_spawn_error, { at: '2026-11-25T09:59:57.000Z', message: 'working_dir /srv/w is not usable (ENOENT)' });
  assert.equal(s.memory_limits?.worker_max_bytes, 4 * 1024 ** 3);
  const text = formatStatus(s, t0);
  assert.match(text, /\n {2}log: {7}\/var\/log\/a\.log\n {2}workdir: {3}\/srv\/w\n/);
  assert.match(text, /\n {2}restart: {3}always; backoff 1\.0s x2 up to 5m 0s, failed after 10 consecutive failures, stable after 1m 0s\n/);
  assert.match(text, /\n {2}limits: {4}tree max 4\.0 GiB; low below 2\.0 GiB available, critical below 1\.0 GiB; under low memory processes over 500\.0 MiB may be killed\n/);
  assert.match(text, /\n {2}last spawn error: working_dir \/srv\/w is not usable \(ENOENT\), 3\.0s ago\n/);
});
