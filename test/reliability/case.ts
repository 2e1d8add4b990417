// What a reliability case is: a bounded run against real daemons that returns a verdict and the
// figures that led to it. `scale` shrinks every count (RELIABILITY_SCALE, 1 = the counts).

import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/daemon.js';
import { Sandbox, type SandboxOptions } from '../helpers/sandbox.js';

export interface CaseContext {
  scale: number;
  /** Scales a count, at least `min`. */
  n(count: number, min?: number): number;
  /** A sandbox the runner ends (every process by PID, the dir removed) after the case, however it ends. */
  sandbox(opts?: SandboxOptions): Sandbox;
  /** Progress on stderr when RELIABILITY_VERBOSE=1. */
  log(message: string): void;
  /** Runs `fn` (a cleanup: ending processes the case started itself) after the case. */
  defer(fn: () => void | Promise<void>): void;
}

export interface CaseResult {
  /** name=value figures, printed on the case's line. */
  figures: Record<string, string | number>;
  /** Each requirement that was not met; empty means PASS. */
  failures: string[];
}

export interface ReliabilityCase {
  name: string;
  /** Longer than this and the case is failed (its processes ended); default the runner's CASE_TIMEOUT_MS. */
  timeoutMs?: (scale: number) => number;
  run(ctx: CaseContext): Promise<CaseResult>;
}

export const WORKERS = join(REPO_ROOT, 'test/reliability/workers');

/** Collects figures and failed requirements. */
export class Verdict {
  readonly figures: Record<string, string | number> = {};
  readonly failures: string[] = [];
  fig(name: string, value: string | number): void {
    this.figures[name] = value;
  }
  require(ok: boolean, what: string): void {
    if (!ok) this.failures.push(what);
  }
  result(): CaseResult {
    return { figures: this.figures, failures: this.failures };
  }
}
