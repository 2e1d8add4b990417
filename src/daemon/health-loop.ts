// Runs the health checks of issue #17: samples the worker tree's CPU, its latest output and the
// heartbeat file, runs the probe one at a time, asks the pure policy (src/policy/health.ts) for a
// verdict, and carries it out through the supervisor's restart path: cause `health` for an
// unhealthy worker (a failure, so a worker that hangs at start backs off), `recycle` for
// max_uptime_ms (planned, not a failure). Nothing runs while every signal is off.

import { monotonicMs } from '../os/monotonic-clock.js';
import type { Config, HealthConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { isoTime } from '../log/iso-time.js';
import { statHeartbeat } from '../os/heartbeat-file.js';
import { runProbe, type ProbeResult, type RunningProbe } from '../os/probe-runner.js';
import type { ProcTable } from '../os/proc-table.js';
import type { TreeTracker } from '../os/tree-tracker.js';
import type { TreeIdentity } from '../os/process-tree.js';
import {
  checkIntervalMs, describeFigures, initialHealthState, judgeHealth, needsSamples, observeProbe, observeSample,
  type HealthSettings, type HealthState, type HeartbeatReading,
} from '../policy/health.js';
import { cpuTicksBetween, readCpu, ticksToMs, type CpuReading } from '../policy/tree-cpu.js';
import type { RestartCause, WorkerModel } from '../policy/worker-state.js';

/** What the loop needs of the supervisor (src/daemon/worker-supervisor.ts). */
export interface HealthWorker {
  readonly state: Readonly<WorkerModel>;
  readonly lastOutputAtMs: number | null;
  clockMs(): number;
  treeIdentity(): TreeIdentity;
  envFor(generation: number): Record<string, string>;
  restart(cause: RestartCause): Promise<void>;
}

export interface HealthLoopDeps {
  logger: Logger;
  table: ProcTable;
  /** Shared with the memory guard: one full /proc scan per interval between the two. */
  tracker: TreeTracker;
  worker: HealthWorker;
  wallNow?: () => number;
}

/** The probe is looked at no more often than this when it is the only signal. */
const MAX_PROBE_TICK_MS = 5000;

/** One worker run as the loop sees it. */
interface Run {
  generation: number;
  health: HealthState;
  cpu: CpuReading | null;
  lastSampleAtMs: number;
  nextProbeAtMs: number;
  /** Why the heartbeat was last not judged, to log a change only. */
  heartbeatUnjudged: string | null;
}

export function healthSettingsOf(h: HealthConfig): HealthSettings {
  return {
    stall_timeout_ms: h.stall_timeout_ms,
    stall_cpu_ms: h.stall_cpu_ms,
    heartbeat_timeout_ms: h.heartbeat_file === null ? null : h.heartbeat_timeout_ms,
    probe_failures: h.probe_command === null ? null : h.probe_failures,
    max_uptime_ms: h.max_uptime_ms,
    start_grace_ms: h.start_grace_ms,
  };
}

export class HealthLoop {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private run: Run | null = null;
  private probe: { running: RunningProbe; generation: number } | null = null;
  /** A restart this loop asked for is in progress: nothing is judged until it settled. */
  private acting = false;
  private readonly wallNow: () => number;

  constructor(private config: Config, private readonly deps: HealthLoopDeps) {
    this.wallNow = deps.wallNow ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.probe?.running.cancel();
  }

  /** New settings apply from the next tick; a signal turned on starts the timer. */
  updateConfig(config: Config): void {
    this.config = config;
    if (this.running && this.timer === null && !this.acting) this.schedule();
  }

  private get settings(): HealthSettings {
    return healthSettingsOf(this.config.health);
  }

  private tickMs(): number | null {
    const s = this.settings;
    const ticks: number[] = [];
    if (needsSamples(s)) ticks.push(checkIntervalMs(s));
    if (s.probe_failures !== null) ticks.push(Math.min(this.config.health.probe_interval_ms, MAX_PROBE_TICK_MS));
    return ticks.length === 0 ? null : Math.min(...ticks);
  }

  private schedule(): void {
    this.timer = null;
    if (!this.running) return;
    const delay = this.tickMs();
    if (delay === null) return; // every signal off: nothing to do until a reload turns one on
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    try {
      this.check();
    } catch (err) {
      this.deps.logger.emit({ kind: 'internal-error', message: `health check: ${(err as Error).stack ?? String(err)}` });
    }
    if (!this.acting) this.schedule();
  }

  /** The current run, started afresh when the worker is a new generation; null unless it runs. */
  private currentRun(): Run | null {
    const w = this.deps.worker.state;
    if (w.state !== 'running' || w.startedAtMs === null) {
      this.run = null;
      return null;
    }
    if (this.run === null || this.run.generation !== w.generation) {
      this.run = {
        generation: w.generation,
        health: initialHealthState(w.startedAtMs),
        cpu: null,
        lastSampleAtMs: w.startedAtMs,
        nextProbeAtMs: w.startedAtMs + this.config.health.start_grace_ms,
        heartbeatUnjudged: null,
      };
    }
    return this.run;
  }

  private check(): void {
    if (this.acting) return;
    const run = this.currentRun();
    if (run === null) return;
    const s = this.settings;
    const atMs = this.deps.worker.clockMs();
    if (needsSamples(s)) {
      run.health = observeSample(run.health, {
        atMs,
        wallMs: this.wallNow(),
        lastOutputAtMs: this.deps.worker.lastOutputAtMs,
        treeCpuMs: s.stall_timeout_ms === null ? null : this.treeCpuMs(run),
        sinceLastSampleMs: Math.max(0, atMs - run.lastSampleAtMs),
        heartbeat: this.readHeartbeat(run),
      }, s);
      run.lastSampleAtMs = atMs;
    }
    if (s.probe_failures !== null && this.probe === null && atMs >= run.nextProbeAtMs) this.startProbe(run, atMs);
    this.judge(run, atMs);
  }

  /** CPU the tree used since the last sample, the probe's own group left out. */
  private treeCpuMs(run: Run): number {
    const { tracker, table, worker } = this.deps;
    const probePid = this.probe?.running.pid ?? null;
    // The memory guard's clock: a reading behind its last one would force the tracker to a full scan.
    const members = tracker.sample(worker.treeIdentity(), monotonicMs()).members.filter((p) => probePid === null || p.pgid !== probePid);
    const reading = readCpu(members);
    const ticks = cpuTicksBetween(run.cpu, reading);
    run.cpu = reading;
    return ticksToMs(ticks, table.clockTicksPerSecond);
  }

  private readHeartbeat(run: Run): HeartbeatReading | null {
    const path = this.config.health.heartbeat_file;
    if (path === null || this.config.health.heartbeat_timeout_ms === null) return null;
    const stat = statHeartbeat(path);
    const wallMs = this.wallNow();
    let unjudged: string | null = null;
    if (stat.kind === 'unknown') unjudged = stat.reason;
    else if (stat.kind === 'mtime' && !(stat.mtimeMs > 0)) unjudged = 'its mtime is zero';
    else if (stat.kind === 'mtime' && stat.mtimeMs > wallMs) unjudged = `its mtime ${isoTime(stat.mtimeMs)} is in the future`;
    if (unjudged !== null && run.heartbeatUnjudged === null) this.deps.logger.emit({ kind: 'health-heartbeat-unjudged', path, reason: unjudged });
    run.heartbeatUnjudged = unjudged;
    return stat.kind === 'unknown' ? { kind: 'unknown' } : stat;
  }

  private startProbe(run: Run, atMs: number): void {
    const h = this.config.health;
    const generation = run.generation;
    const running = runProbe({
      argv: h.probe_command!,
      cwd: this.config.working_dir,
      env: this.deps.worker.envFor(generation),
      timeoutMs: h.probe_timeout_ms,
    }, this.deps.table);
    this.probe = { running, generation };
    void running.result.then((result) => {
      this.probe = null;
      try {
        this.probeDone(result, generation, atMs);
      } catch (err) {
        this.deps.logger.emit({ kind: 'internal-error', message: `health probe: ${(err as Error).stack ?? String(err)}` });
      }
    });
  }

  private probeDone(result: ProbeResult, generation: number, startedAtMs: number): void {
    const log = this.deps.logger;
    if (result.pid !== null && (result.timedOut || result.leftoversKilled.length > 0)) {
      log.emit({ kind: 'health-probe-killed', pid: result.pid, pids: result.leftoversKilled, reason: result.timedOut ? `timed out after ${this.config.health.probe_timeout_ms} ms` : 'left processes behind' });
    }
    if (!this.running || this.acting) return;
    const run = this.currentRun();
    // A probe of an earlier run says nothing of this one.
    if (run === null || run.generation !== generation) return;
    const atMs = this.deps.worker.clockMs();
    const before = run.health.consecutiveProbeFailures;
    const s = this.settings;
    run.health = observeProbe(run.health, { startedAtMs, atMs, ok: result.ok, detail: result.detail }, s);
    const after = run.health.consecutiveProbeFailures;
    if (after > before) {
      log.emit({ kind: 'health-probe-failed', generation, consecutiveFailures: after, probeFailures: s.probe_failures ?? 0, detail: result.detail, output: result.outputTail });
    } else if (after === 0 && before > 0) {
      log.emit({ kind: 'health-probe-recovered', generation, previousFailures: before });
    }
    run.nextProbeAtMs = atMs + this.config.health.probe_interval_ms;
    this.judge(run, atMs);
  }

  private judge(run: Run, atMs: number): void {
    if (this.acting) return;
    const verdict = judgeHealth(run.health, atMs, this.settings);
    const log = this.deps.logger;
    if (verdict.kind === 'unhealthy') {
      log.emit({ kind: 'health-unhealthy', signal: verdict.signal, generation: run.generation, figures: describeFigures(verdict.figures) });
      this.restart('health');
    } else if (verdict.kind === 'recycle') {
      log.emit({ kind: 'health-recycle', generation: run.generation, uptimeMs: verdict.uptimeMs, maxUptimeMs: verdict.maxUptimeMs });
      this.restart('recycle');
    }
  }

  private restart(cause: 'health' | 'recycle'): void {
    this.acting = true;
    this.run = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.deps.worker.restart(cause)
      .catch((err: Error) => this.deps.logger.emit({ kind: 'internal-error', message: `health: restarting the worker: ${err.message}` }))
      .finally(() => {
        this.acting = false;
        this.schedule();
      });
  }
}
