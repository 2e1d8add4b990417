// Every line the daemon logs is one of these events. A mapped type requires a level and a text for
// each kind, so logs, journald output and (later) an event stream cannot drift apart.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

import type { WorkerOutputLine } from '../control/protocol.js';

type Exit = { code: number | null; signal: string | null };
/** One setting a reload changed: its key path and both values, already shortened for a log line. */
/**
 * One changed setting of a reload. A key that may hold a secret (`worker.env.*`, a command line)
 * carries only what happened to it, never a value: the event reaches the log and every subscriber.
 */
export type ConfigChange =
  | { key: string; from: string; to: string; hidden?: never }
  | { key: string; hidden: 'added' | 'removed' | 'changed'; from?: never; to?: never };

export type LogEvent =
  | { kind: 'daemon-started'; pid: number; version: string; instanceId: string; configPath: string | null; logTarget: string }
  | { kind: 'daemon-ready'; socketPath: string }
  | { kind: 'daemon-stopping'; reason: string }
  | { kind: 'daemon-stopped'; durationMs: number }
  | { kind: 'daemon-force-stop'; reason: string }
  /** A command that changes something, from a control client (null: its pid could not be had) or a signal. */
  | { kind: 'operator-command'; command: string; pid: number | null; uid: number | null; via: 'socket' | 'SIGHUP' }
  /** `changes` lists the first changed keys; `omitted` counts those left out of the line. */
  | { kind: 'config-reloaded'; path: string | null; changes: readonly ConfigChange[]; omitted: number }
  | { kind: 'config-reload-rejected'; message: string }
  | { kind: 'orphan-tree-found'; instanceId: string; previousPid: number; pids: number[] }
  | { kind: 'instance-record-ignored'; reason: string }
  /** The previous record's daemon is alive: its tree is no orphan, whatever the lock said. */
  | { kind: 'previous-daemon-alive'; instanceId: string; previousPid: number }
  | { kind: 'worker-spawned'; generation: number; pid: number; argv: string[]; cwd: string }
  | { kind: 'worker-spawn-failed'; generation: number; reason: string }
  /** `tail`: the run's last output lines (crash context) for subscribers; the log has the lines themselves. */
  | { kind: 'worker-exited'; generation: number; pid: number; code: number | null; signal: string | null; uptimeMs: number; tail: readonly WorkerOutputLine[] }
  /** An exit the daemon asked for (stop, restart): information, not a warning. */
  | { kind: 'worker-stopped'; generation: number; pid: number; code: number | null; signal: string | null; uptimeMs: number; tail: readonly WorkerOutputLine[] }
  /** Exit code 0 under restart = "on-failure": the worker finished, not a failure. */
  | { kind: 'worker-finished'; generation: number; pid: number; code: number | null; signal: string | null; uptimeMs: number; tail: readonly WorkerOutputLine[] }
  | { kind: 'worker-state'; from: string; to: string }
  | { kind: 'restart-scheduled'; cause: string; delayMs: number; consecutiveFailures: number }
  | { kind: 'worker-failed'; consecutiveFailures: number; lastExit: Exit | null; retryMs: number }
  | { kind: 'failures-cleared'; previousFailures: number }
  | { kind: 'restart-prevented'; code: number }
  | { kind: 'hold-requested'; code: number; delayMs: number; basis: string; fallbackReason: string | null }
  | { kind: 'worker-held'; delayMs: number; basis: string; consecutiveFailures: number }
  | { kind: 'worker-output-dropped'; lines: number }
  | { kind: 'tree-term-sent'; pgid: number | null; pids: number[] }
  | { kind: 'tree-kill-sent'; pids: number[]; afterMs: number }
  | { kind: 'tree-over-limit'; treeRssBytes: number; treeSwapBytes: number; limitBytes: number; afterMs: number }
  | { kind: 'tree-survivors-killed'; pids: number[] }
  | { kind: 'tree-gone'; durationMs: number }
  | { kind: 'tree-survivors-left'; pids: number[] }
  | { kind: 'memory-sample'; level: string; availableBytes: number; treeRssBytes: number; treeSwapBytes: number; treeProcesses: number; nextPollMs: number }
  | { kind: 'memory-verdict'; level: string; verdict: string; availableBytes: number; treeRssBytes: number; treeSwapBytes: number }
  | { kind: 'memory-kill'; pid: number; comm: string; rssBytes: number; swapBytes: number; reason: string; availableBytes: number; thresholdBytes: number; treeRssBytes: number; treeSwapBytes: number }
  | { kind: 'memory-kill-escalated'; pid: number; comm: string; graceMs: number }
  | { kind: 'memory-kill-done'; pid: number; availableBefore: number; availableAfter: number; treeRssBefore: number; treeRssAfter: number; treeSwapBefore: number; treeSwapAfter: number }
  | { kind: 'memory-restart'; reason: string; availableBytes: number; /** The figure compared with the limit: RSS + swap, or the cgroup leaf's. */ treeBytes: number; treeRssBytes: number; treeSwapBytes: number; limitBytes: number | null }
  | { kind: 'memory-restart-done'; availableBefore: number; availableAfter: number; treeRssBefore: number; treeRssAfter: number; treeSwapBefore: number; treeSwapAfter: number }
  | { kind: 'memory-threshold-warning'; message: string }
  | { kind: 'notify-sent'; event: string; durationMs: number; suppressed: number }
  /** Left out by the rate limit or because one for the same kind still runs; counted into the next. */
  | { kind: 'notify-suppressed'; event: string; reason: string; suppressed: number }
  | { kind: 'notify-failed'; event: string; reason: string }
  | { kind: 'notify-output'; event: string; stream: 'stdout' | 'stderr'; text: string; droppedBytes: number }
  /** A health signal judged the worker unhealthy (issue #17); `figures` in words (policy/health.ts describeFigures). */
  | { kind: 'health-unhealthy'; signal: string; generation: number; figures: string }
  | { kind: 'health-recycle'; generation: number; uptimeMs: number; maxUptimeMs: number }
  | { kind: 'health-probe-failed'; generation: number; consecutiveFailures: number; probeFailures: number; detail: string; output: string }
  | { kind: 'health-probe-recovered'; generation: number; previousFailures: number }
  /** A timed-out probe's group was killed, or what a finished probe left in its group. */
  | { kind: 'health-probe-killed'; pid: number; pids: number[]; reason: string }
  /** The heartbeat can't be judged (mtime zero or in the future, unreadable): no restart for it. Logged when it changes. */
  | { kind: 'health-heartbeat-unjudged'; path: string; reason: string }
  | { kind: 'native-missing'; reason: string }
  /** Once at start: whether single processes are signalled through pidfds or by a checked kill() (issue #18). */
  | { kind: 'signal-path'; via: 'pidfd' | 'kill'; reason: string | null }
  /** The daemon is not a child subreaper (issue #18): the worker tree is found by /proc scans, said once at start. */
  | { kind: 'tree-by-scan'; reason: string }
  /** A zombie the daemon adopted (an orphan of its descendants) was reaped. */
  | { kind: 'orphan-reaped'; pid: number; code: number | null; signal: string | null }
  /** How the worker tree is found and stopped (issue #18): a cgroup v2 leaf, or the /proc rules, and why. */
  | { kind: 'tree-backend'; backend: 'cgroup' | 'proc'; detail: string }
  /** A leaf a predecessor of this instance left with processes in it: stopped before the worker spawns. */
  | { kind: 'cgroup-leftover-found'; dir: string; pids: number[] }
  /** An empty private cgroup directory of a dead daemon, removed. */
  | { kind: 'cgroup-leftover-removed'; dir: string }
  | { kind: 'cgroup-problem'; message: string }
  | { kind: 'sd-notify-failed'; message: string }
  | { kind: 'control-error'; message: string }
  /** Routine control socket events (a refused request, an idle timeout), for debugging clients. */
  | { kind: 'control-note'; message: string }
  /** An event subscriber that did not read was cut off (issue #19). */
  | { kind: 'events-subscriber-dropped'; bufferedBytes: number; limitBytes: number; sent: number }
  | { kind: 'metrics-listening'; address: string }
  | { kind: 'metrics-error'; message: string }
  | { kind: 'log-problem'; message: string }
  | { kind: 'unexpected'; message: string }
  | { kind: 'internal-error'; message: string };

export type LogEventKind = LogEvent['kind'];

type Fields = Record<string, string | number | boolean | null | undefined | readonly (string | number)[]>;
interface Rendering<E> { level: LogLevel; text: (e: E) => [message: string, fields?: Fields] }
type Formats = { [K in LogEventKind]: Rendering<Extract<LogEvent, { kind: K }>> };

const exitText = (e: Exit | null): string =>
  e === null ? 'none' : e.signal !== null ? `signal ${e.signal}` : `code ${e.code ?? '?'}`;
const HOLD_BASIS_TEXT: Record<string, string> = {
  file: 'the time in its hold file',
  hold_max_ms: 'the time in its hold file, cut to [restart].hold_max_ms',
  hold_ms: '[restart].hold_ms',
};
const operatorText = (e: { pid: number | null; uid: number | null; via: string }): string =>
  e.via === 'SIGHUP' ? 'by SIGHUP' : e.pid === null ? 'from a client (client pid unknown)' : `from pid ${e.pid} (uid ${e.uid ?? '?'})`;
const changesText = (changes: readonly ConfigChange[], omitted: number): string =>
  changes.length === 0 && omitted === 0 ? 'nothing changed' : [
    ...changes.map((c) => c.hidden !== undefined ? `${c.key} ${c.hidden}` : `${c.key} ${c.from} -> ${c.to}`),
    ...(omitted > 0 ? [`(and ${omitted} more)`] : []),
  ].join(', ');
const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)}MiB`;

export const FORMATS: Formats = {
  'daemon-started': { level: 'info', text: (e) => ['daemon started', { pid: e.pid, version: e.version, instance: e.instanceId, config: e.configPath ?? '(defaults)', log: e.logTarget }] },
  'daemon-ready': { level: 'info', text: (e) => ['daemon ready', { socket: e.socketPath }] },
  'daemon-stopping': { level: 'info', text: (e) => ['daemon stopping', { reason: e.reason }] },
  'daemon-stopped': { level: 'info', text: (e) => ['daemon stopped', { took_ms: e.durationMs }] },
  'daemon-force-stop': { level: 'warn', text: (e) => ['forcing stop: killing the worker tree now', { reason: e.reason }] },
  'operator-command': { level: 'info', text: (e) => [`operator: ${e.command} ${operatorText(e)}`] },
  'config-reloaded': { level: 'info', text: (e) => [`configuration reloaded: ${changesText(e.changes, e.omitted)}`, { config: e.path ?? '(defaults)' }] },
  'config-reload-rejected': { level: 'error', text: (e) => [`configuration reload rejected, keeping the old one: ${e.message}`] },
  'instance-record-ignored': { level: 'warn', text: (e) => [`instance record ignored, no orphaned tree is looked for: ${e.reason}`] },
  'orphan-tree-found': { level: 'warn', text: (e) => ['worker tree of a previous daemon found; stopping it before starting', { instance: e.instanceId, previous_pid: e.previousPid, pids: e.pids }] },
  'previous-daemon-alive': { level: 'warn', text: (e) => ['the previous daemon named by the pid file is still alive; leaving its worker tree alone', { instance: e.instanceId, previous_pid: e.previousPid }] },
  'worker-spawned': { level: 'info', text: (e) => ['worker spawned', { generation: e.generation, pid: e.pid, argv: e.argv, cwd: e.cwd }] },
  'worker-spawn-failed': { level: 'error', text: (e) => [`worker spawn failed: ${e.reason}`, { generation: e.generation }] },
  'worker-exited': { level: 'warn', text: (e) => [`worker exited with ${exitText(e)}`, { generation: e.generation, pid: e.pid, uptime_ms: e.uptimeMs }] },
  'worker-stopped': { level: 'info', text: (e) => [`worker stopped with ${exitText(e)}`, { generation: e.generation, pid: e.pid, uptime_ms: e.uptimeMs }] },
  'worker-finished': { level: 'info', text: (e) => [`worker finished with ${exitText(e)}; not a failure under restart = "on-failure"`, { generation: e.generation, pid: e.pid, uptime_ms: e.uptimeMs }] },
  'worker-state': { level: 'info', text: (e) => [`worker state ${e.from} -> ${e.to}`] },
  'restart-scheduled': { level: 'info', text: (e) => [`restarting worker in ${e.delayMs} ms`, { cause: e.cause, consecutive_failures: e.consecutiveFailures }] },
  'worker-failed': { level: 'error', text: (e) => [`worker failed ${e.consecutiveFailures} times in a row (last exit: ${exitText(e.lastExit)}); still retrying every ${e.retryMs} ms`] },
  'failures-cleared': { level: 'info', text: (e) => ['worker ran stable; failure count cleared', { previous_failures: e.previousFailures }] },
  'restart-prevented': { level: 'warn', text: (e) => [`worker asked not to be restarted: exit code ${e.code} is in [restart].prevent_exit_codes; it stays stopped until start-worker`] },
  'hold-requested': { level: 'info', text: (e) => [
    `worker asked to be held: exit code ${e.code} is in [restart].hold_exit_codes; next start ${e.delayMs} ms after the exit (${HOLD_BASIS_TEXT[e.basis] ?? e.basis}${e.fallbackReason === null ? '' : `: ${e.fallbackReason}`})`,
  ] },
  'worker-held': { level: 'info', text: (e) => [`worker held, not a failure; starting it in ${e.delayMs} ms`, { basis: e.basis, consecutive_failures: e.consecutiveFailures }] },
  'worker-output-dropped': { level: 'warn', text: (e) => ['worker output lines dropped', { lines: e.lines }] },
  'tree-term-sent': { level: 'info', text: (e) => ['SIGTERM sent to the worker tree', { pgid: e.pgid, pids: e.pids }] },
  'tree-kill-sent': { level: 'warn', text: (e) => [`SIGKILL sent after ${e.afterMs} ms`, { pids: e.pids }] },
  'tree-over-limit': { level: 'warn', text: (e) => ['tree over limit during the grace: SIGKILL now', { tree_rss: mib(e.treeRssBytes), tree_swap: mib(e.treeSwapBytes), kill_above: mib(e.limitBytes), after_ms: e.afterMs }] },
  'tree-survivors-killed': { level: 'warn', text: (e) => ['escaped tree members found and killed', { pids: e.pids }] },
  'tree-gone': { level: 'info', text: (e) => ['worker tree gone', { took_ms: e.durationMs }] },
  'tree-survivors-left': { level: 'error', text: (e) => ['worker tree members survived SIGKILL', { pids: e.pids }] },
  'memory-sample': { level: 'debug', text: (e) => ['memory', { level: e.level, available: mib(e.availableBytes), tree_rss: mib(e.treeRssBytes), tree_swap: mib(e.treeSwapBytes), tree_processes: e.treeProcesses, next_poll_ms: e.nextPollMs }] },
  'memory-verdict': { level: 'info', text: (e) => [e.verdict === e.level ? `memory ${e.level}` : `memory ${e.level}: ${e.verdict}`, { available: mib(e.availableBytes), tree_rss: mib(e.treeRssBytes), tree_swap: mib(e.treeSwapBytes) }] },
  'memory-kill': { level: 'warn', text: (e) => [`memory ${e.reason}: sending SIGTERM to ${e.comm}`, { pid: e.pid, rss: mib(e.rssBytes), swap: mib(e.swapBytes), available: mib(e.availableBytes), threshold: mib(e.thresholdBytes), tree_rss: mib(e.treeRssBytes), tree_swap: mib(e.treeSwapBytes) }] },
  'memory-kill-escalated': { level: 'warn', text: (e) => [`memory: ${e.comm} ignored SIGTERM for ${e.graceMs} ms; sending SIGKILL`, { pid: e.pid }] },
  'memory-kill-done': { level: 'warn', text: (e) => ['memory: victim gone', { pid: e.pid, available_before: mib(e.availableBefore), available_after: mib(e.availableAfter), tree_rss_before: mib(e.treeRssBefore), tree_rss_after: mib(e.treeRssAfter), tree_swap_before: mib(e.treeSwapBefore), tree_swap_after: mib(e.treeSwapAfter) }] },
  'memory-restart': { level: 'warn', text: (e) => [`memory ${e.reason}: restarting the worker`, { available: mib(e.availableBytes), tree: mib(e.treeBytes), tree_rss: mib(e.treeRssBytes), tree_swap: mib(e.treeSwapBytes), limit: e.limitBytes === null ? null : mib(e.limitBytes) }] },
  'memory-restart-done': { level: 'warn', text: (e) => ['memory: old worker tree gone', { available_before: mib(e.availableBefore), available_after: mib(e.availableAfter), tree_rss_before: mib(e.treeRssBefore), tree_rss_after: mib(e.treeRssAfter), tree_swap_before: mib(e.treeSwapBefore), tree_swap_after: mib(e.treeSwapAfter) }] },
  'memory-threshold-warning': { level: 'warn', text: (e) => [e.message] },
  'notify-sent': { level: 'info', text: (e) => [`notify command for ${e.event} done`, { took_ms: e.durationMs, suppressed: e.suppressed }] },
  'notify-suppressed': { level: 'info', text: (e) => [`notify ${e.event} suppressed (${e.reason}); counted into the next`, { suppressed: e.suppressed }] },
  'notify-failed': { level: 'warn', text: (e) => [`notify command for ${e.event} failed: ${e.reason}`] },
  'notify-output': { level: 'info', text: (e) => [`notify command for ${e.event} wrote on ${e.stream}: ${e.text}`, { dropped_bytes: e.droppedBytes > 0 ? e.droppedBytes : undefined }] },
  'health-unhealthy': { level: 'warn', text: (e) => [`worker unhealthy (${e.signal}): ${e.figures}; restarting it`, { signal: e.signal, generation: e.generation }] },
  'health-recycle': { level: 'info', text: (e) => [`worker reached max_uptime_ms: recycling it (planned, not a failure)`, { generation: e.generation, uptime_ms: e.uptimeMs, max_uptime_ms: e.maxUptimeMs }] },
  'health-probe-failed': { level: 'warn', text: (e) => [`health probe failed: ${e.detail}`, { generation: e.generation, consecutive_failures: e.consecutiveFailures, probe_failures: e.probeFailures, output: e.output === '' ? undefined : e.output }] },
  'health-probe-recovered': { level: 'info', text: (e) => ['health probe passed again', { generation: e.generation, previous_failures: e.previousFailures }] },
  'health-probe-killed': { level: 'warn', text: (e) => [`health probe ${e.reason}: SIGKILL to its process group`, { pid: e.pid, pids: e.pids.length === 0 ? undefined : e.pids }] },
  'health-heartbeat-unjudged': { level: 'warn', text: (e) => [`heartbeat file not judged: ${e.reason}; no restart for it`, { path: e.path }] },
  'tree-by-scan': { level: 'warn', text: (e) => [`worker tree found by /proc scans, not as the daemon's descendants (${e.reason}): a descendant that clears its environment and leaves the worker's session and parents is not found`] },
  'orphan-reaped': { level: 'debug', text: (e) => ['reaped an adopted orphan', { pid: e.pid, exit: exitText(e) }] },
  'tree-backend': { level: 'info', text: (e) => [`worker tree backend: ${e.backend} (${e.detail})`] },
  'cgroup-leftover-found': { level: 'warn', text: (e) => ['cgroup leaf of a previous daemon still holds processes; stopping them before starting', { cgroup: e.dir, pids: e.pids }] },
  'cgroup-leftover-removed': { level: 'info', text: (e) => ['empty cgroup of a dead daemon removed', { cgroup: e.dir }] },
  'cgroup-problem': { level: 'warn', text: (e) => [`cgroup: ${e.message}`] },
  'native-missing': { level: 'warn', text: (e) => [`native helper not loaded (${e.reason}); sd_notify goes through systemd-notify, which needs NotifyAccess=all`] },
  'signal-path': {
    level: 'info',
    text: (e) => [e.via === 'pidfd'
      ? 'signals to single worker processes go through pidfds: a pid handed out again cannot be hit'
      : `signals to single worker processes go by pid, after a start-time check (no pidfd: ${e.reason ?? 'unknown'}); a pid reused between the check and kill() could be hit`],
  },
  'sd-notify-failed': { level: 'warn', text: (e) => [`${e.message}; the service manager may not hear from the daemon (reported once)`] },
  'control-error': { level: 'warn', text: (e) => [`control: ${e.message}`] },
  'control-note': { level: 'debug', text: (e) => [`control: ${e.message}`] },
  'events-subscriber-dropped': { level: 'warn', text: (e) => ['event subscriber dropped: it did not read its events', { unread_bytes: e.bufferedBytes, limit_bytes: e.limitBytes, sent: e.sent }] },
  'metrics-listening': { level: 'info', text: (e) => [`serving metrics at http://${e.address}/metrics`] },
  'metrics-error': { level: 'warn', text: (e) => [`metrics: ${e.message}`] },
  'log-problem': { level: 'warn', text: (e) => [`log: ${e.message}`] },
  'unexpected': { level: 'warn', text: (e) => [`can't happen: ${e.message}`] },
  'internal-error': { level: 'error', text: (e) => [`internal error: ${e.message}`] },
};

function renderValue(v: Fields[string]): string {
  if (Array.isArray(v)) return `[${v.map((x) => renderValue(x as string | number)).join(',')}]`;
  if (typeof v === 'string') return /^[\w./:@+-]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}

/** The level and the text of an event, as one line without timestamp: `message key=value ...`. */
export function renderEvent(event: LogEvent): { level: LogLevel; text: string } {
  const format = FORMATS[event.kind] as Rendering<LogEvent>;
  const [message, fields = {}] = format.text(event);
  const parts = [message];
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) parts.push(`${key}=${renderValue(value)}`);
  }
  return { level: format.level, text: parts.join(' ') };
}
