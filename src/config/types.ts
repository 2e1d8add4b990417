// The effective configuration, after defaults, file, environment and flags were merged and
// validated. Every other module takes this shape; only src/config/ knows where values came from.
// Key names match the TOML file (snake_case) so that errors, `config show` and docs use one name.

export type RestartMode = 'always' | 'on-failure';
export type HogScope = 'tree' | 'user';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface WorkerConfig {
  /** argv; the first element is looked up in PATH unless it contains a slash. */
  command: string[];
  env: Record<string, string>;
  stop_timeout_ms: number;
  restart: RestartMode;
  /** Lines of the worker's output kept in memory for its last exit (status `worker.last_exit.tail`). */
  crash_context_lines: number;
}

export interface MemoryConfig {
  min_available_bytes: number;
  critical_threshold_bytes: number;
  poll_interval_ms: number;
  node_kill_threshold_bytes: number;
  /** Percent (0-100) of `some avg10` above which memory counts as low; null = not used. */
  psi_some_avg10: number | null;
  kill_grace_ms: number;
  cooldown_ms: number;
  /** Whole worker tree RSS + swap above which the worker is restarted; null = no limit. */
  worker_max_bytes: number | null;
  hog_scope: HogScope;
  hog_names: string[];
}

export interface RestartConfig {
  initial_backoff_ms: number;
  max_backoff_ms: number;
  backoff_multiplier: number;
  max_consecutive_restarts: number;
  stable_after_ms: number;
  /** Exit codes by which the worker asks not to be restarted. */
  prevent_exit_codes: number[];
  /** Exit codes by which the worker asks to be started again later (hold_ms, or its hold file). */
  hold_exit_codes: number[];
  hold_ms: number;
  hold_max_ms: number;
}

/** Signals of life (issue #17); a null key turns its signal off. */
export interface HealthConfig {
  /** No output and no CPU (beyond stall_cpu_ms per check) from the tree for this long: unhealthy. */
  stall_timeout_ms: number | null;
  /** CPU time (ms) per check interval the tree may use and still count as idle. */
  stall_cpu_ms: number;
  /** A file the worker touches; with heartbeat_timeout_ms, both or neither. */
  heartbeat_file: string | null;
  heartbeat_timeout_ms: number | null;
  /** argv run in working_dir with the worker's environment; exit 0 = healthy. */
  probe_command: string[] | null;
  probe_interval_ms: number;
  probe_timeout_ms: number;
  /** Consecutive failed or timed-out probes that make the worker unhealthy. */
  probe_failures: number;
  /** Planned recycle after this long, healthy or not (cause `recycle`, not a failure). */
  max_uptime_ms: number | null;
  /** Nothing is judged for this long after a spawn. */
  start_grace_ms: number;
}

export interface LogsConfig {
  /** Directory for daemon and worker log files when not under journald. */
  dir: string;
  max_file_bytes: number;
  max_files: number;
}

/** What a notification is about (README "Notifications"); one name each in config, payload and docs. */
export const NOTIFY_EVENT_KINDS = ['failed', 'recovered', 'memory', 'health', 'held', 'prevented', 'daemon-start', 'daemon-stop'] as const;
export type NotifyEventKind = (typeof NOTIFY_EVENT_KINDS)[number];

export interface NotifyConfig {
  /** argv run with one JSON object on stdin for each notable event; null = no notifications. */
  command: string[] | null;
  events: NotifyEventKind[];
  /** The command and its tree are killed after this long. */
  timeout_ms: number;
  /** Per kind: at most one command in this long; the others are counted in the next. */
  min_interval_ms: number;
}

/** The cgroup v2 backend of the worker tree (issue #18). */
export interface CgroupConfig {
  /** auto: a writable cgroup v2 when there is one, else /proc; off: /proc; required: cgroup v2 or no start. */
  mode: CgroupMode;
  /** memory.max of each worker leaf = memory.worker_max_bytes times this (a kernel backstop); null = none. */
  backstop_factor: number | null;
}

export type CgroupMode = 'auto' | 'off' | 'required';

export interface MetricsConfig {
  /** Where GET /metrics is served ("HOST:PORT", or "PORT" on 127.0.0.1); null = not served. */
  listen: string | null;
}

export interface Config {
  working_dir: string;
  project: string | null;
  socket_path: string;
  pid_file: string;
  /** Least severe level the daemon writes; lower levels cost no formatting work. */
  log_level: LogLevel;
  worker: WorkerConfig;
  memory: MemoryConfig;
  restart: RestartConfig;
  health: HealthConfig;
  logs: LogsConfig;
  notify: NotifyConfig;
  cgroup: CgroupConfig;
  metrics: MetricsConfig;
}

/** Where an effective value came from, for `config show`. */
export type ValueSource =
  | { kind: 'default' }
  | { kind: 'file'; path: string; line?: number }
  | { kind: 'env'; name: string }
  | { kind: 'flag'; name: string };

export interface LoadedConfig {
  config: Config;
  /** Path of the file that was read, or null when none existed (defaults only). */
  path: string | null;
  /** Keyed by dotted key path, e.g. "memory.poll_interval_ms". */
  sources: Record<string, ValueSource>;
}

/** Command-line values that override everything else. */
export interface ConfigFlags {
  configPath?: string;
  /** `--instance NAME`: the instance's config file and default paths (config/instance.ts). */
  instance?: string;
  project?: string;
  workdir?: string;
  workerCommand?: string[];
}
