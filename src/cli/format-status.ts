// The human summary printed by `autopilotd status` (the raw data is `status --json`).

import type { BackoffStatus, MemoryLimitsStatus, StatusData, TreeProcessStatus, TreeStatus, WorkerExitStatus } from '../control/protocol.js';
import { escapeForTerminal } from '../log/terminal-text.js';

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * ` (+1.2 GiB swap)` when some is swapped out; nothing at 0, or from an older daemon that does not
 * send the field (undefined), as most machines have no swap and the line would only grow.
 */
function swapText(swapBytes: number | null | undefined): string {
  return swapBytes === null || swapBytes === undefined || swapBytes <= 0 ? '' : ` (+${formatBytes(swapBytes)} swap)`;
}

const ago = (iso: string, nowMs: number): string => `${formatDuration(Math.max(0, nowMs - Date.parse(iso)))} ago`;

/** What the worker asked for by its exit code, while that still decides its state. */
function askedText(exit: WorkerExitStatus, state: string): string {
  if (exit.asked === 'prevent' && state === 'stopped') return '; the worker asked not to be restarted (prevent_exit_codes): start-worker starts it';
  if (exit.asked === 'hold' && state === 'held') return '; the worker asked to be held (hold_exit_codes): start-worker ends the hold';
  return '';
}

/** The crash context under the last exit, each line marked with its stream and made safe for a terminal. */
function tailLines(exit: WorkerExitStatus | null): string[] {
  const tail = exit?.tail ?? [];
  if (tail.length === 0) return [];
  const head = `  output before it (last ${tail.length} ${tail.length === 1 ? 'line' : 'lines'}):`;
  return [head, ...tail.map((l) => `    ${l.stream === 'stderr' ? 'err' : 'out'}| ${escapeForTerminal(l.line)}${l.cut ? ' [cut at 4 KiB]' : ''}`)];
}

function treeText(t: TreeStatus): string {
  if (t.backend === 'proc') return 'proc (found by group, session, ancestry and instance marker)';
  return `cgroup ${t.leaf ?? t.cgroup ?? ''}`.trimEnd();
}

/** Lines of the tree listing at most (beyond: "... N more"), so that a fork bomb keeps status readable. */
export const TREE_LINES = 20;
const COMMAND_CHARS = 100;

/** The tree's processes in tree order (each parent, then its children by pid), with their depth. */
function treeOrder(procs: readonly TreeProcessStatus[]): { p: TreeProcessStatus; depth: number }[] {
  const pids = new Set(procs.map((p) => p.pid));
  const children = new Map<number, TreeProcessStatus[]>();
  for (const p of procs) if (pids.has(p.ppid) && p.ppid !== p.pid) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: { p: TreeProcessStatus; depth: number }[] = [];
  const seen = new Set<number>();
  const visit = (p: TreeProcessStatus, depth: number): void => {
    if (seen.has(p.pid)) return;
    seen.add(p.pid);
    out.push({ p, depth });
    for (const c of (children.get(p.pid) ?? []).sort((a, b) => a.pid - b.pid)) visit(c, depth + 1);
  };
  // Roots: the processes whose parent is not in the tree (the worker main, orphans reparented away); the main comes first.
  for (const p of procs) if (!pids.has(p.ppid) || p.ppid === p.pid) visit(p, 0);
  return out;
}

function commandText(p: TreeProcessStatus): string {
  const text = p.command.length === 0 ? `[${p.comm}]` : p.command.join(' ');
  return text.length > COMMAND_CHARS ? `${text.slice(0, COMMAND_CHARS - 3)}...` : text;
}

/** The worker tree as `ps --forest` shows it: pid, RSS, then the command indented under its parent. */
export function treeLines(t: TreeStatus | undefined, max = TREE_LINES): string[] {
  const procs = t?.processes;
  if (procs === undefined || procs.length === 0) return [];
  const rows = treeOrder(procs);
  const shown = rows.slice(0, max);
  const lines = ['  processes:', ...shown.map(({ p, depth }) => `    ${String(p.pid).padStart(7)} ${formatBytes(p.rss_bytes).padStart(10)}  ${depth === 0 ? '' : `${'   '.repeat(depth - 1)}\\_ `}${commandText(p)}`)];
  const more = rows.length - shown.length + (t?.processes_left_out ?? 0);
  if (more > 0) lines.push(`    ... ${more} more`);
  return lines;
}

function restartText(restart: string, b: BackoffStatus): string {
  const times = b.backoff_multiplier === 1 ? '' : ` x${b.backoff_multiplier}`;
  return `${restart}; backoff ${formatDuration(b.initial_backoff_ms)}${times} up to ${formatDuration(b.max_backoff_ms)}, failed after ${b.max_consecutive_restarts} consecutive failures, stable after ${formatDuration(b.stable_after_ms)}`;
}

function limitsText(m: MemoryLimitsStatus): string {
  const tree = m.worker_max_bytes === null ? 'tree unlimited' : `tree max ${formatBytes(m.worker_max_bytes)}`;
  const psi = m.psi_some_avg10 === null ? '' : `, or pressure some above ${m.psi_some_avg10}%`;
  return `${tree}; low below ${formatBytes(m.min_available_bytes)} available${psi}, critical below ${formatBytes(m.critical_threshold_bytes)}; under low memory processes over ${formatBytes(m.node_kill_threshold_bytes)} may be killed`;
}

/** What an older daemon's reply lacks is left out. */
function configLines(s: StatusData): string[] {
  const w = s.worker;
  const lines = [`  log:       ${s.daemon.log_target}`];
  if (w.working_dir !== undefined) lines.push(`  workdir:   ${w.working_dir}`);
  if (w.restart !== undefined && w.backoff !== undefined) lines.push(`  restart:   ${restartText(w.restart, w.backoff)}`);
  if (s.memory_limits !== undefined) lines.push(`  limits:    ${limitsText(s.memory_limits)}`);
  return lines;
}

export function formatStatus(s: StatusData, nowMs: number): string {
  const w = s.worker;
  const lines: string[] = [];
  lines.push(`autopilotd ${s.daemon.version}: running, pid ${s.daemon.pid}, up ${formatDuration(s.daemon.uptime_ms)}`);
  lines.push(`  config:    ${s.daemon.config_path ?? '(built-in defaults)'}`);
  lines.push(...configLines(s));
  // An older daemon's reply may lack the field: nothing to say then.
  const native = s.daemon.native;
  if (native !== undefined && !native.loaded) lines.push(`  native:    not loaded (${native.reason ?? 'unknown'}); sd_notify goes through systemd-notify`);
  const up = w.uptime_ms === null ? '' : `, up ${formatDuration(w.uptime_ms)}`;
  // An older daemon's reply may lack it.
  if (s.tree !== undefined) lines.push(`  tree:      ${treeText(s.tree)}`);
  lines.push(`  worker:    ${w.state}${w.pid === null ? '' : `, pid ${w.pid}`}, generation ${w.generation}${up}`);
  lines.push(`  command:   ${w.command.join(' ')}`);
  const r = s.restarts;
  // An older daemon's reply may lack the oom, hold and recycle counts.
  const oom = r.oom === undefined ? '' : `, oom ${r.oom}`;
  const held = r.hold === undefined ? '' : `, hold ${r.hold}`;
  const recycled = r.recycle === undefined ? '' : `, recycle ${r.recycle}`;
  lines.push(`  restarts:  ${r.total} (crash ${r.crash}${oom}, memory ${r.memory}, operator ${r.operator}, health ${r.health}${held}${recycled}); consecutive failures ${w.consecutive_failures}`);
  if (w.last_exit) {
    const how = w.last_exit.signal ? `signal ${w.last_exit.signal}` : `code ${w.last_exit.code}`;
    const ran = w.last_exit.uptime_ms === null ? '' : ` after ${formatDuration(w.last_exit.uptime_ms)}`;
    lines.push(`  last exit: ${how}${ran}, ${ago(w.last_exit.at, nowMs)}${askedText(w.last_exit, w.state)}`);
  }
  if (w.next_restart_at) {
    const until = w.state === 'held' ? ` (held until ${w.next_restart_at})` : '';
    lines.push(`  next start: in ${formatDuration(Math.max(0, Date.parse(w.next_restart_at) - nowMs))}${until}`);
  }
  lines.push(...tailLines(w.last_exit));
  const spawnError = w.last_spawn_error;
  if (spawnError) lines.push(`  last spawn error: ${spawnError.message}, ${ago(spawnError.at, nowMs)}`);
  const m = s.memory;
  if (m) {
    const avail = m.available_bytes === null ? '?' : formatBytes(m.available_bytes);
    const psi = m.psi ? `; pressure some ${m.psi.some_avg10.toFixed(2)}%` : '';
    const tree = m.tree_rss_bytes === null ? '' : `; worker tree ${formatBytes(m.tree_rss_bytes)}${swapText(m.tree_swap_bytes)} in ${m.tree_processes} processes`;
    lines.push(`  memory:    ${m.level}; available ${avail}${psi}${tree}`);
    if (m.top.length > 0) lines.push(`  largest:   ${m.top.map((p) => `${p.comm}[${p.pid}] ${formatBytes(p.rss_bytes)}${swapText(p.swap_bytes)}`).join(', ')}`);
    if (m.last_action) {
      const a = m.last_action;
      const who = a.pid === null ? '' : ` ${a.comm ?? '?'}[${a.pid}]${a.rss_bytes === null ? '' : ` ${formatBytes(a.rss_bytes)}${swapText(a.swap_bytes)}`}`;
      lines.push(`  last memory action: ${a.kind}${who} (${a.reason}), ${ago(a.at, nowMs)}`);
    }
  }
  lines.push(...treeLines(s.tree));
  return `${lines.join('\n')}\n`;
}
