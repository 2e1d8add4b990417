// Shares each turn of the event loop among the connections that have requests to run (issue #15
// item 5). A handler that settles at once never yields: its continuations are microtasks, so a
// client pipelining 10 000 `status` lines used to be answered in one turn while timers (the memory
// guard's poll) and other sockets waited. Now each connection runs at most one request per turn,
// and all of them together at most REQUESTS_PER_TURN or TURN_BUDGET_MS; the rest wait, in arrival
// order, for a later turn (setImmediate: after timers and I/O have had theirs).
import { monotonicMs } from '../os/monotonic-clock.js';

/** Requests run in one turn across all connections. */
export const REQUESTS_PER_TURN = 32;
/** Time after the first request of a turn past which no other request starts in that turn. */
export const TURN_BUDGET_MS = 5;

interface Waiter {
  lastTurn: number;
  resolve: (turn: number) => void;
}

export class TurnBudget {
  private turn = 0;
  private granted = 0;
  private turnStartedAtMs = 0;
  private nextTurnArmed = false;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly maxRequests = REQUESTS_PER_TURN,
    private readonly maxMs = TURN_BUDGET_MS,
  ) {}

  /**
   * Resolves with the turn in which the caller may run one request. `lastTurn` is the turn of the
   * caller's previous request (-1 for none): a connection never runs two in the same turn.
   */
  take(lastTurn: number): Promise<number> {
    if (lastTurn !== this.turn && this.waiting.length === 0 && this.hasRoom()) return Promise.resolve(this.grant());
    return new Promise((resolve) => {
      this.waiting.push({ lastTurn, resolve });
      this.armNextTurn();
    });
  }

  /**
   * A granted request has finished (or the caller gave up its grant). Lets the next waiting
   * connection run in this turn while the budget lasts: the time spent is known only now.
   */
  done(): void {
    if (!this.hasRoom()) return;
    const index = this.waiting.findIndex((w) => w.lastTurn !== this.turn);
    if (index === -1) return;
    const [waiter] = this.waiting.splice(index, 1);
    waiter?.resolve(this.grant());
  }

  private hasRoom(): boolean {
    if (this.granted === 0) return true;
    return this.granted < this.maxRequests && monotonicMs() - this.turnStartedAtMs < this.maxMs;
  }

  private grant(): number {
    if (this.granted === 0) this.turnStartedAtMs = monotonicMs();
    this.granted += 1;
    this.armNextTurn();
    return this.turn;
  }

  private armNextTurn(): void {
    if (this.nextTurnArmed) return;
    this.nextTurnArmed = true;
    setImmediate(() => {
      this.nextTurnArmed = false;
      this.turn += 1;
      this.granted = 0;
      // One now; each finished request lets the next one in (done()), so the time budget holds.
      this.done();
      if (this.waiting.length > 0) this.armNextTurn();
    });
  }
}
