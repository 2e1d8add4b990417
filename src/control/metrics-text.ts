// The daemon's figures as Prometheus text exposition format 0.0.4 (README "Metrics"): what each
// metric is, from the status and the daemon's counters, and the text. Pure: no node: imports and no
// clock; the daemon gathers the inputs (metrics-registry.ts) and serves the text.

import { WORKER_STATES, type StatusData } from './protocol.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Counters the status does not hold; each map is label value -> count. */
export interface DaemonCounters {
  /** By kind as status `memory.last_action.kind` names it: `kill`, `restart-worker`. */
  memoryActions: Readonly<Record<string, number>>;
  memoryKillEscalations: number;
  /** Unhealthy verdicts by signal: `stall`, `heartbeat`, `probe`. */
  healthRestarts: Readonly<Record<string, number>>;
  /** Notify commands run (finished or failed), failed, and suppressed, by event kind. */
  notifyRuns: Readonly<Record<string, number>>;
  notifyFailures: Readonly<Record<string, number>>;
  notifySuppressed: Readonly<Record<string, number>>;
  /** Control requests and connections refused, by the error code they were given. */
  controlRejected: Readonly<Record<string, number>>;
  /** Log lines lost because the log could not be written. */
  logLinesDropped: number;
  /** Events numbered so far (the `subscribe` stream's last seq). */
  events: number;
}

export interface MetricsInput {
  status: StatusData;
  counters: DaemonCounters;
  /** null before the control socket listens. */
  control: { openConnections: number; acceptedConnections: number; subscribers: number; droppedSubscribers: number } | null;
  daemonProcess: { rssBytes: number; cpuSeconds: number; nodeVersion: string };
}

export type MetricType = 'counter' | 'gauge';

export interface Sample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const MEMORY_LEVELS = ['ok', 'low', 'critical'] as const;

/** The families, in a fixed order; a figure not known now (no memory sample yet) has no sample. */
export function metricFamilies(input: MetricsInput): MetricFamily[] {
  return [...daemonFamilies(input), ...workerFamilies(input.status), ...memoryFamilies(input), ...activityFamilies(input)];
}

/** The exposition text: HELP and TYPE before each family's samples, a newline at the end. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${renderLabels(s.labels)} ${renderValue(s.value)}`);
  }
  return `${out.join('\n')}\n`;
}

export function renderMetrics(input: MetricsInput): string {
  return renderExposition(metricFamilies(input));
}

const one = (value: number | null | undefined): Sample[] => (typeof value === 'number' ? [{ value }] : []);
const gauge = (name: string, help: string, samples: Sample[]): MetricFamily => ({ name, help, type: 'gauge', samples });
const counter = (name: string, help: string, samples: Sample[]): MetricFamily => ({ name, help, type: 'counter', samples });

/** One sample per label value, sorted, so that the text is stable. */
function byLabel(label: string, counts: Readonly<Record<string, number>>): Sample[] {
  return Object.keys(counts).sort().map((key) => ({ labels: { [label]: key }, value: counts[key]! }));
}

/** One sample per value of an enumeration: 1 for the current one, 0 for the others. */
function stateSet(label: string, values: readonly string[], current: string | null): Sample[] {
  const all = current === null || values.includes(current) ? values : [...values, current];
  return all.map((value) => ({ labels: { [label]: value }, value: value === current ? 1 : 0 }));
}

function daemonFamilies({ status, daemonProcess, control }: MetricsInput): MetricFamily[] {
  return [
    gauge('autopilotd_build_info', 'The daemon\'s version and Node.js version; always 1.', [{ labels: { version: status.daemon.version, node: daemonProcess.nodeVersion }, value: 1 }]),
    gauge('autopilotd_daemon_uptime_seconds', 'Seconds since the daemon started.', [{ value: status.daemon.uptime_ms / 1000 }]),
    gauge('autopilotd_daemon_resident_memory_bytes', 'Resident set size of the daemon process.', [{ value: daemonProcess.rssBytes }]),
    counter('autopilotd_daemon_cpu_seconds_total', 'CPU time (user and system) the daemon process used.', [{ value: daemonProcess.cpuSeconds }]),
    gauge('autopilotd_control_connections_open', 'Control socket connections open now, subscribers included.', one(control?.openConnections)),
    counter('autopilotd_control_connections_accepted_total', 'Control socket connections accepted.', one(control?.acceptedConnections)),
    gauge('autopilotd_events_subscribers', 'Event stream subscribers connected now.', one(control?.subscribers)),
    counter('autopilotd_events_subscribers_dropped_total', 'Event subscribers dropped for not reading their events.', one(control?.droppedSubscribers)),
  ];
}

function workerFamilies(status: StatusData): MetricFamily[] {
  const w = status.worker;
  const causes = Object.fromEntries(Object.entries(status.restarts).filter(([cause]) => cause !== 'total'));
  return [
    gauge('autopilotd_worker_state', 'The worker\'s state: 1 for the current one, 0 for the others.', stateSet('state', WORKER_STATES, w.state)),
    gauge('autopilotd_worker_generation', 'Spawns of the worker since the daemon started (the current run\'s number).', [{ value: w.generation }]),
    gauge('autopilotd_worker_uptime_seconds', 'Seconds the current worker run has lasted; absent while none runs.', one(w.uptime_ms === null ? null : w.uptime_ms / 1000)),
    gauge('autopilotd_worker_consecutive_failures', 'Failures in a row since the last stable run.', [{ value: w.consecutive_failures }]),
    counter('autopilotd_worker_restarts_total', 'Worker restarts by cause.', byLabel('cause', causes)),
  ];
}

function memoryFamilies({ status, counters }: MetricsInput): MetricFamily[] {
  const m = status.memory;
  return [
    gauge('autopilotd_memory_level', 'The memory guard\'s level: 1 for the current one, 0 for the others.', m === null ? [] : stateSet('level', MEMORY_LEVELS, m.level)),
    gauge('autopilotd_memory_available_bytes', 'MemAvailable of the system.', one(m?.available_bytes)),
    gauge('autopilotd_memory_psi_some_avg10_ratio', 'Memory pressure (PSI) some avg10, as a ratio 0..1.', one(m?.psi ? m.psi.some_avg10 / 100 : null)),
    gauge('autopilotd_memory_psi_full_avg10_ratio', 'Memory pressure (PSI) full avg10, as a ratio 0..1.', one(m?.psi?.full_avg10 == null ? null : m.psi.full_avg10 / 100)),
    gauge('autopilotd_worker_tree_rss_bytes', 'Resident set size of the whole worker tree.', one(m?.tree_rss_bytes)),
    gauge('autopilotd_worker_tree_swap_bytes', 'Swap used by the whole worker tree.', one(m?.tree_swap_bytes)),
    gauge('autopilotd_worker_tree_processes', 'Processes in the worker tree.', one(m?.tree_processes)),
    counter('autopilotd_memory_actions_total', 'Memory guard actions by kind.', byLabel('kind', counters.memoryActions)),
    counter('autopilotd_memory_kill_escalations_total', 'Memory victims that ignored SIGTERM and got SIGKILL.', [{ value: counters.memoryKillEscalations }]),
  ];
}

function activityFamilies({ counters }: MetricsInput): MetricFamily[] {
  return [
    counter('autopilotd_health_restarts_total', 'Worker restarts for a failed health signal, by signal.', byLabel('signal', counters.healthRestarts)),
    counter('autopilotd_notify_runs_total', 'Notify commands run, by event kind.', byLabel('event', counters.notifyRuns)),
    counter('autopilotd_notify_failures_total', 'Notify commands that failed (exit status, timeout, spawn error), by event kind.', byLabel('event', counters.notifyFailures)),
    counter('autopilotd_notify_suppressed_total', 'Notifications left out by the rate limit, by event kind.', byLabel('event', counters.notifySuppressed)),
    counter('autopilotd_control_rejected_total', 'Control requests and connections refused, by error code.', byLabel('code', counters.controlRejected)),
    counter('autopilotd_log_lines_dropped_total', 'Log lines lost because the log could not be written.', [{ value: counters.logLinesDropped }]),
    counter('autopilotd_events_total', 'Events the daemon logged (the event stream\'s last sequence number).', [{ value: counters.events }]),
  ];
}

function renderLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function renderValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** In label values: backslash, double quote and newline are escaped (format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** In HELP: backslash and newline. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
