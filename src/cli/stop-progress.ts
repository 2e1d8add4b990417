// What `stop` and `restart-worker` wait for, told on a terminal as it happens: the daemon's tree-stop
// events come over a `subscribe` stream (src/control/subscribe-client.ts) opened before the request.
// Best effort: a daemon that cannot stream (older, at its subscriber limit) only loses the progress.

import type { StreamEvent } from '../control/events-protocol.js';
import type { StatusData } from '../control/protocol.js';
import { subscribeEvents } from '../control/subscribe-client.js';
import { formatDuration } from './format-status.js';

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 'es'}`;

function pidCount(text: string): number | null {
  const m = /pids=\[([\d,]*)\]/.exec(text);
  return m === null ? null : m[1]!.split(',').filter((x) => x !== '').length;
}

const processes = (text: string): string => {
  const n = pidCount(text);
  return n === null ? 'the tree' : plural(n, 'process');
};

/** The progress line for one event, or null for events that are no step of a tree stop. */
export function progressLine(e: StreamEvent): string | null {
  switch (e.kind) {
    case 'tree-term-sent': return `  SIGTERM sent to ${processes(e.text)}`;
    case 'tree-kill-sent': {
      const after = /after (\d+) ms/.exec(e.text);
      return `  grace over${after === null ? '' : ` after ${formatDuration(Number(after[1]))}`}: SIGKILL sent to ${processes(e.text)}`;
    }
    case 'tree-over-limit': return '  the tree grew over its memory limit during the grace: SIGKILL now';
    case 'tree-survivors-killed': return `  ${processes(e.text)} that escaped the tree found and killed`;
    case 'tree-survivors-left': return `  ${processes(e.text)} survived SIGKILL (stuck in the kernel?)`;
    case 'daemon-force-stop': return '  forced: the worker tree is killed now';
    case 'tree-gone': {
      const took = /took_ms=(\d+)/.exec(e.text);
      return `  worker tree gone${took === null ? '' : ` in ${formatDuration(Number(took[1]))}`}`;
    }
    default: return null;
  }
}

/** "worker tree: 3 processes, SIGTERM, then SIGKILL after 10 s grace" from the status before the request. */
export function stopPlan(s: StatusData): string {
  const n = s.memory?.tree_processes;
  const grace = s.worker.stop_timeout_ms;
  const tree = n === null || n === undefined ? 'worker tree' : `worker tree: ${plural(n, 'process')}`;
  return `${tree}, SIGTERM${grace === undefined ? '' : `, then SIGKILL after ${formatDuration(grace)} grace`}`;
}

export interface Progress {
  /**
   * Ends the stream once it has told the tree gone (its events may come after the action's reply:
   * another connection), it ended, or `waitMs` passed.
   */
  end(waitMs: number): Promise<void>;
}

/**
 * Prints each tree-stop step from `sinceMs` on (the backlog holds older ones, of earlier restarts).
 * The request is sent at once, without waiting for the subscription: events it causes before the
 * stream is live are in the backlog, and the time filter keeps them.
 */
export function followProgress(socketPath: string, sinceMs: number, write: (line: string) => void): Progress {
  const abort = new AbortController();
  let gone = (): void => {};
  const treeGone = new Promise<void>((resolve) => { gone = resolve; });
  const streamed = subscribeEvents(socketPath, {
    follow: true,
    signal: abort.signal,
    onEvent: (e) => {
      if (Date.parse(e.at) < sinceMs) return;
      const line = progressLine(e);
      if (line !== null) write(`${line}\n`);
      if (e.kind === 'tree-gone') gone();
    },
  }).then(() => undefined, () => undefined);
  return {
    end: async (waitMs) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([treeGone, streamed, new Promise((resolve) => { timer = setTimeout(resolve, waitMs); })]);
      clearTimeout(timer);
      abort.abort();
      await streamed;
    },
  };
}
