// Start-up and shutdown as one ordered list of steps, as systemd and s6-rc order a boot: each step
// that started leaves its undo, and the undos run in reverse, at shutdown and after a failed start
// alike. So there is one cleanup path, not one per place a start can fail (#15).

/** Undoes a step. It may be async; a failure is reported and the next undo still runs. */
export type Undo = () => unknown;

export interface LifecycleStep {
  /** What the step does, to follow "cannot" in a message: "take the instance locks". */
  name: string;
  /** Does the step; returns its undo (none when there is nothing to undo). */
  start(): Promise<Undo | void> | Undo | void;
}

export class StepFailure extends Error {
  constructor(readonly step: string, readonly error: unknown) {
    super(`cannot ${step}: ${(error as Error)?.message ?? String(error)}`);
  }
}

export class Lifecycle {
  private readonly undos: { name: string; undo: Undo }[] = [];
  private inFlight: Promise<unknown> = Promise.resolve();
  private undoing: Promise<void> | null = null;

  /** `onUndoError` hears of an undo that failed; the others run regardless. */
  constructor(private readonly onUndoError: (step: string, err: unknown) => void) {}

  /**
   * Runs the steps in order. Stops at the first that throws (a StepFailure naming it) and at once
   * when undo() was called meanwhile; either way the steps begun so far are left for undo().
   */
  async start(steps: readonly LifecycleStep[]): Promise<void> {
    for (const step of steps) {
      if (this.undoing !== null) return;
      const run = (async () => {
        const undo = await step.start();
        if (undo) this.undos.push({ name: step.name, undo });
      })();
      this.inFlight = run.catch(() => undefined);
      try {
        await run;
      } catch (err) {
        throw new StepFailure(step.name, err);
      }
    }
  }

  /** Undoes every step that started, last first, once the step in flight (if any) has finished. Idempotent. */
  undo(): Promise<void> {
    this.undoing ??= (async () => {
      await this.inFlight;
      for (const { name, undo } of this.undos.splice(0).reverse()) {
        try {
          await undo();
        } catch (err) {
          this.onUndoError(name, err);
        }
      }
    })();
    return this.undoing;
  }

  get stopping(): boolean {
    return this.undoing !== null;
  }
}
