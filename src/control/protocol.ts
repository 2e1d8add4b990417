// Wire format of the control socket: JSON lines, one request per line, one reply per line.
// Pure: no node: imports, so the CLI bundle and tests can load it without side effects.

export const PROTOCOL_VERSION = 1;

export const COMMANDS = [
  'status',
  'restart-worker',
  'stop-worker',
  'start-worker',
  'reload',
  'shutdown',
  // The log's events, the last 100 then live, on this connection (events-protocol.ts).
  'subscribe',
  // Prometheus text exposition of the daemon's figures (metrics-text.ts).
  'metrics',
] as const;
export type Command = (typeof COMMANDS)[number];

export const ERROR_CODES = [
  'bad_json',
  'bad_request',
  'unsupported_version',
  'unknown_command',
  'line_too_long',
  'busy',
  'timeout',
  'internal',
  'not_running',
  'invalid_config',
  'shutting_down',
  // Client side only: the socket exists but we may not connect (another user's daemon).
  'permission_denied',
  // Client side only: the daemon closed the connection before replying.
  'disconnected',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface Request {
  v: typeof PROTOCOL_VERSION;
  id: JsonValue;
  cmd: Command;
  /** Always an object; `{}` when the request had no `args`. */
  args: Record<string, unknown>;
}

export interface ReplyError {
  code: ErrorCode;
  message: string;
}

export type Reply =
  | { v: typeof PROTOCOL_VERSION; id: JsonValue; ok: true; data: unknown }
  | { v: typeof PROTOCOL_VERSION; id: JsonValue; ok: false; error: ReplyError };

/** A line that is not a valid request; `id` is echoed when it could be read, else null. */
export interface ProtocolFailure {
  failed: true;
  id: JsonValue;
  code: ErrorCode;
  message: string;
}

/** Thrown by command handlers (and by the client) to produce a reply with a specific code. */
export class ControlError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlError';
    this.code = code;
  }
}

export function isCommand(value: unknown): value is Command {
  return typeof value === 'string' && (COMMANDS as readonly string[]).includes(value);
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

export function isProtocolFailure<T extends object>(value: T | ProtocolFailure): value is ProtocolFailure {
  return 'failed' in value;
}

function failure(id: JsonValue, code: ErrorCode, message: string): ProtocolFailure {
  return { failed: true, id, code, message };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Short rendering of a bad value for error messages (client input may be huge). */
function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

export function parseRequest(line: string): Request | ProtocolFailure {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return failure(null, 'bad_json', `invalid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(value)) return failure(null, 'bad_request', 'request must be a JSON object');
  // Read the id first so every later failure can echo it to a pipelining client.
  const hasId = Object.prototype.hasOwnProperty.call(value, 'id');
  const id = hasId ? (value['id'] as JsonValue) : null;
  // Version before shape: a future version may shape requests differently.
  if (value['v'] !== PROTOCOL_VERSION) {
    return failure(id, 'unsupported_version', `unsupported protocol version ${describe(value['v'])}, expected ${PROTOCOL_VERSION}`);
  }
  if (!hasId) return failure(null, 'bad_request', 'request has no "id"');
  const cmd = value['cmd'];
  if (typeof cmd !== 'string') return failure(id, 'bad_request', `"cmd" must be a string, got ${describe(cmd)}`);
  if (!isCommand(cmd)) {
    return failure(id, 'unknown_command', `unknown command ${describe(cmd)}; known: ${COMMANDS.join(', ')}`);
  }
  const args = value['args'];
  if (args !== undefined && !isPlainObject(args)) {
    return failure(id, 'bad_request', `"args" must be an object, got ${describe(args)}`);
  }
  return { v: PROTOCOL_VERSION, id, cmd, args: args ?? {} };
}

export function okReply(id: JsonValue, data: unknown): Reply {
  return { v: PROTOCOL_VERSION, id, ok: true, data };
}

export function errorReply(id: JsonValue, code: ErrorCode, message: string): Reply {
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, message } };
}

/**
 * One reply line, newline included. Never throws: data that JSON cannot encode (BigInt, cycles)
 * becomes an `internal` error reply naming the cause, so one bad handler result cannot break the
 * connection's reply order.
 */
export function encodeReply(reply: Reply): string {
  // `undefined` data would vanish from the JSON; a client expects the key.
  const normalized = reply.ok && reply.data === undefined ? { ...reply, data: {} } : reply;
  try {
    return `${JSON.stringify(normalized)}\n`;
  } catch (err) {
    const message = `reply data is not JSON-encodable: ${(err as Error).message}`;
    return `${JSON.stringify(errorReply(safeId(reply.id), 'internal', message))}\n`;
  }
}

function safeId(id: JsonValue): JsonValue {
  try {
    JSON.stringify(id);
    return id;
  } catch {
    return null;
  }
}

export function encodeRequest(id: JsonValue, cmd: Command, args?: Record<string, unknown>): string {
  const request: Record<string, unknown> = { v: PROTOCOL_VERSION, id, cmd };
  if (args !== undefined) request['args'] = args;
  return `${JSON.stringify(request)}\n`;
}

/** Client side: validate a reply line. Unknown error codes are kept as strings by the caller. */
export function parseReply(line: string): Reply | ProtocolFailure {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return failure(null, 'bad_json', `daemon sent invalid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(value) || value['v'] !== PROTOCOL_VERSION || typeof value['ok'] !== 'boolean') {
    return failure(null, 'bad_request', `daemon sent a malformed reply: ${describe(value)}`);
  }
  const id = (value['id'] ?? null) as JsonValue;
  if (value['ok']) return okReply(id, value['data']);
  const error = value['error'];
  if (!isPlainObject(error) || typeof error['code'] !== 'string' || typeof error['message'] !== 'string') {
    return failure(id, 'bad_request', `daemon sent a malformed error reply: ${describe(value)}`);
  }
  return errorReply(id, error['code'] as ErrorCode, error['message']);
}

// ---- `status` reply data. Timestamps: ISO-8601 UTC strings; durations: ms; sizes: bytes. ----

export const WORKER_STATES = ['starting', 'running', 'backoff', 'stopping', 'stopped', 'failed', 'held'] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

export interface DaemonStatus {
  pid: number;
  version: string;
  started_at: string;
  uptime_ms: number;
  /** null when running on defaults only (no config file). */
  config_path: string | null;
  /** Where the daemon logs: the log file's path, "journald", or "stderr" (a foreground terminal). */
  log_target: string;
  /** The native helper (src/native/): loaded, or why not (sd_notify then goes through systemd-notify). */
  native: { loaded: boolean; reason: string | null };
}

/** One line of the worker's output, as the crash context keeps it (README "Status fields"). */
export interface WorkerOutputLine {
  stream: 'stdout' | 'stderr';
  /** Without its newline; at most 4096 bytes of UTF-8. */
  line: string;
  /** The line was longer and cut to its first 4096 bytes (at a character boundary). */
  cut: boolean;
}

export interface WorkerExitStatus {
  code: number | null;
  signal: string | null;
  at: string;
  uptime_ms: number | null;
  /** What the worker asked for by its exit code: `prevent` (not restarted), `hold` (held), or null. */
  asked: 'prevent' | 'hold' | null;
  /** The last `[worker].crash_context_lines` lines of the run's output, oldest first. */
  tail: WorkerOutputLine[];
}

export interface WorkerStatus {
  state: WorkerState;
  pid: number | null;
  generation: number;
  started_at: string | null;
  uptime_ms: number | null;
  command: string[];
  consecutive_failures: number;
  next_restart_at: string | null;
  last_exit: WorkerExitStatus | null;
  /** The directory the worker runs in (`working_dir`); absent in an older daemon's reply. */
  working_dir?: string;
  /** `[worker].stop_timeout_ms`: the grace between SIGTERM and SIGKILL of a tree stop; absent in an older daemon's reply. */
  stop_timeout_ms?: number;
  /** `[worker].restart`: `always` or `on-failure`; absent in an older daemon's reply. */
  restart?: string;
  /** The `[restart]` figures in force; absent in an older daemon's reply. */
  backoff?: BackoffStatus;
  /** The last spawn failure since the daemon started (kept after later spawns), or null; absent in an older daemon's reply. */
  last_spawn_error?: { at: string; message: string } | null;
}

export interface BackoffStatus {
  initial_backoff_ms: number;
  max_backoff_ms: number;
  backoff_multiplier: number;
  max_consecutive_restarts: number;
  stable_after_ms: number;
}

/** The `[memory]` limits in force (config key names; null where a limit is off). */
export interface MemoryLimitsStatus {
  worker_max_bytes: number | null;
  min_available_bytes: number;
  critical_threshold_bytes: number;
  node_kill_threshold_bytes: number;
  psi_some_avg10: number | null;
}

/** A process of the worker tree, for status's tree listing. */
export interface TreeProcessStatus {
  pid: number;
  ppid: number;
  comm: string;
  /** Its command line (the first 1 KiB of it); [] for a zombie. */
  command: string[];
  rss_bytes: number;
}

export interface RestartCounts {
  total: number;
  crash: number;
  /** Exits after the kernel's OOM killer struck in the tree's cgroup leaf (issue #18); absent in an older daemon's reply. */
  oom?: number;
  memory: number;
  operator: number;
  health: number;
  /** Starts after a hold (exit with a hold code). */
  hold: number;
  /** Planned restarts after [health].max_uptime_ms: not failures. */
  recycle: number;
}

export interface PsiStatus {
  some_avg10: number;
  full_avg10: number | null;
}

export interface ProcessMemory {
  pid: number;
  comm: string;
  rss_bytes: number;
  /** Swapped out (VmSwap), not part of rss_bytes. */
  swap_bytes: number;
}

export interface MemoryActionStatus {
  /** What the guard did, e.g. 'kill' or 'restart-worker'; the daemon defines the values. */
  kind: string;
  reason: string;
  pid: number | null;
  comm: string | null;
  rss_bytes: number | null;
  /** The victim's swap, or the tree's for a restart. */
  swap_bytes: number | null;
  at: string;
}

export interface MemoryStatus {
  /** Memory guard level; the daemon defines the values (e.g. 'ok', 'low', 'critical'). */
  level: string;
  available_bytes: number | null;
  psi: PsiStatus | null;
  tree_rss_bytes: number | null;
  /** Swapped out (VmSwap) over the tree, not part of tree_rss_bytes; the limit compares with the sum. */
  tree_swap_bytes: number | null;
  tree_processes: number | null;
  top: ProcessMemory[];
  last_action: MemoryActionStatus | null;
}

export interface StatusData {
  daemon: DaemonStatus;
  worker: WorkerStatus;
  restarts: RestartCounts;
  /** null until the first memory sample was taken. */
  memory: MemoryStatus | null;
  /** How the worker tree is found and stopped (issue #18); absent in an older daemon's reply. */
  tree?: TreeStatus;
  /** Absent in an older daemon's reply. */
  memory_limits?: MemoryLimitsStatus;
}

export interface TreeStatus {
  /** `cgroup`: a cgroup v2 leaf per worker generation; `proc`: the /proc rules (group, session, ancestry, marker). */
  backend: 'cgroup' | 'proc';
  /** The directory holding the leaves (cgroup backend), else null. */
  cgroup: string | null;
  /** The current (or last) generation's leaf, null when it has none. */
  leaf: string | null;
  /** Its processes as the status's memory sample saw them (at most 100, the worker main first); absent in an older daemon's reply. */
  processes?: TreeProcessStatus[];
  /** How many more it had than `processes` lists. */
  processes_left_out?: number;
}
