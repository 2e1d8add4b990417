// Built-in defaults: the lowest layer, below the file, the environment and the flags.
// Paths keep their `~` here; load.ts expands them against the caller's home directory.
import { NOTIFY_EVENT_KINDS, type Config } from './types.js';

export const DEFAULT_CONFIG_PATH = '~/.autopilot/daemon.toml';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

export const DEFAULTS: Readonly<Config> = deepFreeze({
  working_dir: '~/code/openagents',
  project: null,
  socket_path: '~/.autopilot/autopilotd.sock',
  pid_file: '~/.autopilot/autopilotd.pid',
  log_level: 'info',
  worker: {
    command: ['cargo', 'autopilot', 'run', '--full-auto'],
    env: {},
    stop_timeout_ms: 10_000,
    restart: 'always',
    crash_context_lines: 40,
  },
  memory: {
    min_available_bytes: 2 * GIB,
    critical_threshold_bytes: 1 * GIB,
    poll_interval_ms: 5_000,
    node_kill_threshold_bytes: 500 * MIB,
    psi_some_avg10: null,
    kill_grace_ms: 3_000,
    cooldown_ms: 15_000,
    worker_max_bytes: null,
    hog_scope: 'tree',
    hog_names: ['node', 'claude'],
  },
  restart: {
    initial_backoff_ms: 1_000,
    max_backoff_ms: 300_000,
    backoff_multiplier: 2.0,
    max_consecutive_restarts: 10,
    stable_after_ms: 60_000,
    prevent_exit_codes: [],
    hold_exit_codes: [],
    hold_ms: 30 * 60_000,
    hold_max_ms: 6 * 3_600_000,
  },
  health: {
    stall_timeout_ms: null,
    stall_cpu_ms: 50,
    heartbeat_file: null,
    heartbeat_timeout_ms: null,
    probe_command: null,
    probe_interval_ms: 30_000,
    probe_timeout_ms: 10_000,
    probe_failures: 3,
    max_uptime_ms: null,
    start_grace_ms: 60_000,
  },
  logs: {
    dir: '~/.autopilot/logs',
    max_file_bytes: 10 * MIB,
    max_files: 5,
  },
  notify: {
    command: null,
    // A daemon start is the operator's own doing, usually: asked for by name.
    events: NOTIFY_EVENT_KINDS.filter((kind) => kind !== 'daemon-start'),
    timeout_ms: 10_000,
    min_interval_ms: 60_000,
  },
  cgroup: {
    mode: 'auto',
    backstop_factor: null,
  },
  metrics: {
    listen: null,
  },
} satisfies Config);

// Frozen so that no caller can change the defaults another load will see.
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
