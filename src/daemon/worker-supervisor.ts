// Carries out the worker state machine: the one owner of its timers, the one caller of spawn and
// tree stop. Policy decides (src/policy/worker-state.ts); this file only acts and reports.

import { monotonicMs } from '../os/monotonic-clock.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import {
  initialWorkerModel, stepWorker,
  type RestartCause, type TimerName, type WorkerEffect, type WorkerEvent, type WorkerModel, type WorkerPolicySettings,
} from '../policy/worker-state.js';
import { spawnWorker, type WorkerHandle, type WorkerSpawnRequest } from '../os/worker-process.js';
import { stopTree, type TreeStopEvent } from '../os/tree-stop.js';
import { treeStopKillAboveBytes } from '../policy/memory-guard.js';
import type { ProcTable } from '../os/proc-table.js';
import type { DescendantWalker } from '../os/descendant-walk.js';
import type { ProcessKey, TreeIdentity } from '../os/process-tree.js';
import { LineSplitter } from './line-splitter.js';
import { OutputTail } from './output-tail.js';
import { HoldFiles, type HoldFilePlace } from '../os/hold-file.js';
import { parseHoldUntil, type HoldRequest } from '../policy/hold-until.js';
import type { WorkerOutputLine } from '../control/protocol.js';
import type { WorkerCgroups } from '../os/worker-cgroups.js';
import { WorkerLeaves, type WorkerLeaf } from './worker-leaf.js';

export interface WorkerSupervisorDeps {
  logger: Logger;
  table: ProcTable;
  instanceId: string;
  uid: number;
  /** The daemon and its ancestors now: never part of a tree. */
  protectedPids: () => ReadonlySet<number>;
  /** The daemon's descendant walker when it is a subreaper (issue #18): tree stops walk it instead of scanning. */
  walker?: DescendantWalker | null;
  /**
   * Foreground passes worker output through to these (the daemon's stdout and stderr); a daemonized
   * run, or one under journald, logs it (`log`). Either way the daemon sees it (lastOutputAtMs).
   */
  output: 'log' | NonNullable<WorkerSpawnRequest['passThrough']>;
  /** Called in each spawn's and exit's handling, before the policy hears of it: tests inject failures here. */
  hooks?: { spawned?: (pid: number) => void; exited?: (pid: number) => void };
  /** The policy's clock: monotonic ms (an NTP step must neither fake nor hide a stable run). */
  now?: () => number;
  /** Wall-clock ms, only for what status shows as a date and to read the time in a hold file. */
  wallNow?: () => number;
  /** Where the per-run hold files' directory is made (holdFilePlace of the pid file). */
  holdFiles: HoldFilePlace;
  /** The cgroup backend once set up (null: the /proc rules): each generation gets a leaf of its own. */
  cgroups?: () => WorkerCgroups | null;
}

/** When the current run started and the last one exited, by the wall clock: what status shows. */
export interface WorkerWallTimes {
  startedAtMs: number | null;
  lastExitAtMs: number | null;
}

/** Variables that belong to the daemon's own service manager, not to the worker (nor a notify command). */
export const DAEMON_ONLY_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'];

export function workerArgv(config: Config): string[] {
  return config.project === null ? [...config.worker.command] : [...config.worker.command, '--project', config.project];
}

/** The worker's environment for `generation` (the health probe runs in it too). */
export function workerEnv(config: Config, instanceId: string, generation: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !DAEMON_ONLY_ENV.includes(k)) env[k] = v;
  return Object.assign(env, config.worker.env, { AUTOPILOTD_INSTANCE: instanceId, AUTOPILOTD_GENERATION: String(generation) });
}

export class WorkerSupervisor {
  private model: WorkerModel = initialWorkerModel();
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly waiters = new Set<() => boolean>();
  /** Settles when the current worker's exit event has been handled (resolved at once when none runs). */
  private childExited: Promise<void> = Promise.resolve();
  /** The latest worker (pid and start time); its pid is also its group's id, still needed to clear its tree after it exited. */
  private lastWorker: ProcessKey | null = null;
  /** The latest spawned worker's handle, until its tree is gone. */
  private handle: WorkerHandle | null = null;
  private stopAbort: AbortController | null = null;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private wall: WorkerWallTimes = { startedAtMs: null, lastExitAtMs: null };
  /** The crash context of the run that exited last: it still takes the lines left in its pipes. */
  private lastExitOutput: OutputTail | null = null;
  private readonly holdFiles: HoldFiles;
  /** When the current generation last wrote to stdout or stderr (policy clock); null until it does. */
  private outputAtMs: number | null = null;
  private readonly leaves: WorkerLeaves;
  /** The latest generation's cgroup leaf (kept after its removal: a gone leaf reads as empty); null: /proc rules. */
  private leaf: WorkerLeaf | null = null;
  /** Why the latest failed spawn failed (wall clock); kept after later spawns: status shows it with its time. */
  private spawnError: { atWallMs: number; message: string } | null = null;

  constructor(private config: Config, private readonly deps: WorkerSupervisorDeps) {
    this.leaves = new WorkerLeaves(deps.cgroups ?? (() => null), deps.logger);
    this.now = deps.now ?? (() => Math.round(monotonicMs()));
    this.wallNow = deps.wallNow ?? Date.now;
    this.holdFiles = new HoldFiles(deps.holdFiles);
  }

  /** The last lines of the output of the run that exited last, oldest first (status `last_exit.tail`). */
  lastExitTail(): WorkerOutputLine[] {
    return this.lastExitOutput?.lines() ?? [];
  }

  /** Removes the hold files' directory: once the worker is stopped for good. */
  dispose(): void {
    this.holdFiles.dispose();
  }

  /** The policy's clock now, to compare with the model's times (monotonic ms). */
  clockMs(): number {
    return this.now();
  }

  /** The last spawn failure since the daemon started (status `worker.last_spawn_error`), or null. */
  get lastSpawnError(): Readonly<{ atWallMs: number; message: string }> | null {
    return this.spawnError;
  }

  get wallTimes(): Readonly<WorkerWallTimes> {
    return this.wall;
  }

  get state(): Readonly<WorkerModel> {
    return this.model;
  }

  /** The current generation's latest output, on the policy's clock, or null when it wrote nothing yet. */
  get lastOutputAtMs(): number | null {
    return this.outputAtMs;
  }

  /** The environment the current configuration gives the worker of `generation`. */
  envFor(generation: number): Record<string, string> {
    return workerEnv(this.config, this.deps.instanceId, generation);
  }

  get argv(): string[] {
    return workerArgv(this.config);
  }

  /** Restart and memory settings apply at once; worker settings at the next spawn (read then). */
  updateConfig(config: Config): void {
    this.config = config;
  }

  /** The identity of the current (or last) worker tree, for the memory guard and tree stops. */
  treeIdentity(): TreeIdentity {
    // Each id only while the worker can still hold it. Its pid until its exit event: libuv has
    // reaped it by then, and the kernel may hand that pid out again. Its group id while its tree
    // can exist (running, stopping): once the tree is gone (backoff, failed, stopped, or a new spawn
    // in flight) the kernel may give that number to any new process. Between the two, tree stops
    // and the tracker check at each look that the group id is still the tree's (refineIdentity).
    const s = this.model.state;
    const worker = this.lastWorker;
    return {
      root: this.model.pid !== null && worker?.pid === this.model.pid ? worker : null,
      pgid: s === 'running' || s === 'stopping' ? worker?.pid ?? null : null,
      instanceId: this.deps.instanceId,
      uid: this.deps.uid,
      protectedPids: this.deps.protectedPids(),
    };
  }

  /** The current (or last) tree's cgroup leaf, for the tracker and the memory guard; null: the /proc rules. */
  treeLeaf(): string | null {
    return this.leaf?.dir ?? null;
  }

  /** Starts the worker; resolves once the spawn outcome is known. */
  start(): Promise<void> {
    return this.act({ kind: 'start-requested', atMs: this.now() }, (g0, accepted) => this.settledAfterSpawn(g0, accepted));
  }

  /** Stops the whole tree; resolves once it is gone. */
  stop(): Promise<void> {
    return this.act({ kind: 'stop-requested', atMs: this.now() }, () => this.model.state === 'stopped');
  }

  /** Restarts for `cause`; resolves once the new worker's spawn outcome is known (or it was stopped). */
  restart(cause: RestartCause): Promise<void> {
    return this.act({ kind: 'restart-requested', atMs: this.now(), cause }, (g0, accepted) => this.settledAfterSpawn(g0, accepted));
  }

  /** Skips the grace of a stop in progress: SIGKILL the tree now (second Ctrl-C). */
  forceStop(): void {
    this.stopAbort?.abort();
  }

  /**
   * A start or restart is settled once the new worker runs, or its restart is scheduled (memory and
   * health restarts wait out a backoff), or it was stopped meanwhile. A request the policy ignored
   * (a start while running, a restart while a spawn is in flight) settles once nothing is in flight.
   */
  private settledAfterSpawn(generationBefore: number, accepted: boolean): boolean {
    const s = this.model.state;
    if (s === 'stopped' || s === 'backoff' || s === 'failed' || s === 'held') return true;
    if (s !== 'running') return false;
    return !accepted || this.model.generation > generationBefore;
  }

  private act(event: WorkerEvent, settled: (generationBefore: number, accepted: boolean) => boolean): Promise<void> {
    const g0 = this.model.generation;
    return new Promise((resolve) => {
      const accepted = this.dispatch(event);
      const check = (): boolean => {
        if (!settled(g0, accepted)) return false;
        resolve();
        return true;
      };
      if (!check()) this.waiters.add(check);
    });
  }

  /** Applies `event`; returns false when the policy ignored it (nothing changed). */
  private dispatch(event: WorkerEvent): boolean {
    const before = this.model.state;
    const previous = this.model;
    const step = stepWorker(this.model, event, { ...this.config.restart, restart: this.config.worker.restart } satisfies WorkerPolicySettings);
    this.model = step.model;
    if (before !== this.model.state) this.deps.logger.emit({ kind: 'worker-state', from: before, to: this.model.state });
    for (const effect of step.effects) this.carryOut(effect, event);
    for (const waiter of [...this.waiters]) if (waiter()) this.waiters.delete(waiter);
    return step.model !== previous || step.effects.length > 0;
  }

  private carryOut(effect: WorkerEffect, cause: WorkerEvent): void {
    const log = this.deps.logger;
    switch (effect.kind) {
      case 'spawn': return this.spawnGuarded(effect.generation);
      case 'stop-tree': return this.stopTheTree();
      case 'arm-timer': {
        this.cancelTimer(effect.timer);
        const event = effect.timer === 'backoff' ? 'backoff-elapsed' : 'stable-elapsed';
        this.timers.set(effect.timer, setTimeout(() => {
          this.timers.delete(effect.timer);
          this.dispatch({ kind: event, atMs: this.now() });
        }, effect.delayMs));
        return;
      }
      case 'cancel-timer': return this.cancelTimer(effect.timer);
      case 'restart-scheduled':
        log.emit({ kind: 'restart-scheduled', cause: effect.cause, delayMs: effect.delayMs, consecutiveFailures: effect.consecutiveFailures });
        if (effect.failed) {
          const e = this.model.lastExit;
          log.emit({ kind: 'worker-failed', consecutiveFailures: effect.consecutiveFailures, lastExit: e && { code: e.code, signal: e.signal }, retryMs: effect.delayMs });
        }
        return;
      case 'failures-cleared': return log.emit({ kind: 'failures-cleared', previousFailures: effect.previousFailures });
      case 'restart-prevented': return log.emit({ kind: 'restart-prevented', code: effect.code });
      case 'hold-requested': return log.emit({ kind: 'hold-requested', code: effect.code, delayMs: effect.delayMs, basis: effect.basis, fallbackReason: effect.fallbackReason });
      case 'hold-scheduled': return log.emit({ kind: 'worker-held', delayMs: effect.delayMs, basis: effect.basis, consecutiveFailures: effect.consecutiveFailures });
      case 'unexpected': return log.emit({ kind: 'unexpected', message: `event ${effect.event} in state ${effect.state} (from ${cause.kind})` });
    }
  }

  private cancelTimer(name: TimerName): void {
    const timer = this.timers.get(name);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(name);
  }

  /**
   * A spawn that threw before any callback was armed would leave the policy in `starting` for good:
   * it is told the spawn failed, and the error still reaches the daemon's fatal handler (#15).
   */
  private spawnGuarded(generation: number): void {
    try {
      this.spawn(generation);
    } catch (err) {
      const reason = `internal error: ${(err as Error).message}`;
      this.spawnError = { atWallMs: this.wallNow(), message: reason };
      queueMicrotask(() => this.dispatch({ kind: 'spawn-failed', atMs: this.now(), reason }));
      throw err;
    }
  }

  private spawn(generation: number): void {
    const { config, deps } = this;
    const argv = workerArgv(config);
    const env = workerEnv(config, deps.instanceId, generation);
    const holdFile = this.holdFilePath(generation);
    if (holdFile !== null) env.AUTOPILOTD_HOLD_UNTIL_FILE = holdFile;
    this.outputAtMs = null;
    const tail = new OutputTail(config.worker.crash_context_lines);
    const toLog = deps.output === 'log';
    // Lines are split in every mode, for the crash context; logged when output goes to the log.
    // stdout and stderr differ inside the brackets, so no text of the worker can make a stdout line
    // read as a stderr one, nor as a daemon line (none starts with `worker[`); under journald the
    // priority stays info for both: build tools write their progress to stderr.
    const splitters = {
      stdout: new LineSplitter((lines) => {
        tail.push('stdout', lines);
        if (toLog) deps.logger.workerOutput(`worker[${generation}] `, lines);
      }),
      stderr: new LineSplitter((lines) => {
        tail.push('stderr', lines);
        if (toLog) deps.logger.workerOutput(`worker[${generation},stderr] `, lines);
      }),
    };
    let pid = 0;
    // This run's own start: the model's startedAtMs may still be the previous run's (#15).
    let spawnedAtMs: number | null = null;
    let exited = (): void => {};
    this.childExited = new Promise((resolve) => { exited = resolve; });
    const request: WorkerSpawnRequest = { argv, cwd: config.working_dir, env };
    if (deps.output !== 'log') request.passThrough = deps.output;
    const leaf = this.leaves.open(generation, config);
    this.leaf = leaf;
    if (leaf !== null) request.around = this.leaves.around(leaf);
    const handle = spawnWorker(request, {
      onSpawned: (p) => {
        pid = p;
        spawnedAtMs = this.now();
        // Whatever fails here, the policy must hear of the spawn, or a stop would wait on a
        // `starting` worker for good; the error then goes on to the daemon's fatal handler.
        try {
          // Node reports the spawn on the next tick, before libuv's SIGCHLD handler (which reaps, and
          // then reports the exit) can run: the worker is not reaped yet, so no other process can
          // have its pid, and this is its start time. setsid() made it its group's and session's
          // leader, so its pid is their id too.
          const startTimeTicks = deps.table.read(p)?.startTimeTicks;
          if (startTimeTicks === undefined) {
            deps.logger.emit({ kind: 'internal-error', message: `worker pid ${p}: /proc/${p}/stat not readable at spawn; its tree is found by the instance marker only` });
          }
          this.lastWorker = startTimeTicks === undefined ? null : { pid: p, startTimeTicks };
          deps.logger.emit({ kind: 'worker-spawned', generation, pid: p, argv, cwd: config.working_dir });
          deps.hooks?.spawned?.(p);
        } finally {
          this.wall = { ...this.wall, startedAtMs: this.wallNow() };
          this.dispatch({ kind: 'spawned', atMs: spawnedAtMs, pid: p });
        }
      },
      onSpawnFailed: (reason) => {
        this.leaves.release(leaf);
        exited();
        this.spawnError = { atWallMs: this.wallNow(), message: reason };
        deps.logger.emit({ kind: 'worker-spawn-failed', generation, reason });
        this.dispatch({ kind: 'spawn-failed', atMs: this.now(), reason });
      },
      onExit: (code, signal) => {
        const atMs = this.now();
        let hold: HoldRequest = { kind: 'none' };
        let oomKilled = false;
        // As in onSpawned: the policy hears of the exit and a stop waiting on it goes on, come what may.
        try {
          splitters?.stdout.flush();
          splitters?.stderr.flush();
          // Lines still in the pipes (libuv may report the exit before it read them) join this tail
          // until the tree is gone and the pipes are let go: status reads it then, not now.
          this.lastExitOutput = tail;
          hold = this.readHoldFile(generation);
          oomKilled = this.leaves.oomKilled(leaf);
          const uptimeMs = spawnedAtMs === null ? 0 : Math.max(0, atMs - spawnedAtMs);
          const asked = this.model.state === 'stopping';
          deps.logger.emit({ kind: exitKind(asked, code, this.config.worker.restart), generation, pid, code, signal, uptimeMs, tail: tail.lines() });
          deps.hooks?.exited?.(pid);
        } finally {
          this.wall = { ...this.wall, lastExitAtMs: this.wallNow() };
          try {
            this.dispatch({ kind: 'exited', atMs, code, signal, hold, oomKilled });
          } finally {
            exited();
          }
        }
      },
      onOutput: (stream, chunk) => {
        // An escapee of an earlier generation may still write: only this generation's output counts.
        if (this.model.generation === generation) this.outputAtMs = this.now();
        splitters?.[stream].push(chunk);
      },
      onError: (message) => deps.logger.emit({ kind: 'internal-error', message }),
    });
    this.handle = handle ?? null;
    if (leaf !== null && !leaf.bornInLeaf) {
      // Spawned where the daemon is (reported): this generation's tree is found by the /proc rules.
      this.leaf = null;
      this.leaves.release(leaf);
    }
    this.releaseSplitters = () => {
      splitters.stdout.flush();
      splitters.stderr.flush();
    };
  }

  /** The hold file's path for this run, or null (logged) when its directory cannot be made: a hold then lasts hold_ms. */
  private holdFilePath(generation: number): string | null {
    try {
      return this.holdFiles.pathFor(generation);
    } catch (err) {
      this.deps.logger.emit({ kind: 'internal-error', message: `cannot make the directory for hold files: ${(err as Error).message}; a hold lasts [restart].hold_ms` });
      return null;
    }
  }

  /** What the exited run wrote into its hold file, as a delay from now by the wall clock. */
  private readHoldFile(generation: number): HoldRequest {
    const reading = this.holdFiles.take(generation);
    if (reading.kind === 'absent') return { kind: 'none' };
    if (reading.kind === 'unreadable') return reading;
    const untilMs = parseHoldUntil(reading.text);
    return untilMs === null ? { kind: 'invalid', text: reading.text } : { kind: 'at', inMs: untilMs - this.wallNow() };
  }

  /** Set per spawn: flushes what the last worker's pipes held when they are let go. */
  private releaseSplitters: (() => void) | null = null;

  /** Lets go of the last worker's output pipes: its tree is gone, and an escapee may hold them. */
  private releaseOutput(): void {
    this.handle?.releaseOutput();
    this.handle = null;
    this.releaseSplitters?.();
    this.releaseSplitters = null;
  }

  private stopTheTree(): void {
    const { deps } = this;
    const abort = new AbortController();
    this.stopAbort = abort;
    const onEvent = (e: TreeStopEvent): void => {
      switch (e.kind) {
        case 'term_sent': return deps.logger.emit({ kind: 'tree-term-sent', pgid: e.pgid, pids: e.pids });
        case 'kill_sent': return deps.logger.emit({ kind: 'tree-kill-sent', pids: e.pids, afterMs: e.afterMs });
        case 'tree_over_limit': return deps.logger.emit({ kind: 'tree-over-limit', treeRssBytes: e.treeRssBytes, treeSwapBytes: e.treeSwapBytes, limitBytes: e.limitBytes, afterMs: e.afterMs });
        case 'survivors_killed': return deps.logger.emit({ kind: 'tree-survivors-killed', pids: e.pids });
        case 'tree_gone': return deps.logger.emit({ kind: 'tree-gone', durationMs: e.durationMs });
        case 'survivors_remain': return; // logged once from the report, below
      }
    };
    const killAboveTreeBytes = treeStopKillAboveBytes(this.config.memory.worker_max_bytes);
    const leaf = this.leaf;
    stopTree({ table: deps.table, identity: this.treeIdentity(), graceMs: this.config.worker.stop_timeout_ms, onEvent, force: abort.signal, killAboveTreeBytes, walker: deps.walker, cgroup: leaf?.dir ?? null })
      .then((report) => {
        if (report.survivors.length > 0) deps.logger.emit({ kind: 'tree-survivors-left', pids: report.survivors });
      }, (err: Error) => {
        deps.logger.emit({ kind: 'internal-error', message: `stopping the worker tree: ${err.message}` });
      })
      // A scan can see the worker dead (a zombie) before libuv delivers its exit event; wait for that
      // event so an old generation's exit can never be taken for the next one's.
      .then(() => this.childExited)
      .finally(() => {
        if (this.stopAbort === abort) this.stopAbort = null;
        this.releaseOutput();
        this.leaves.release(leaf);
        this.dispatch({ kind: 'tree-gone', atMs: this.now() });
      });
  }
}

/** A clean exit under restart = "on-failure" is what the worker was meant to do: no warning. */
function exitKind(asked: boolean, code: number | null, restart: 'always' | 'on-failure'): 'worker-stopped' | 'worker-finished' | 'worker-exited' {
  if (asked) return 'worker-stopped';
  return code === 0 && restart === 'on-failure' ? 'worker-finished' : 'worker-exited';
}
