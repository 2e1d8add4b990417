// The counters behind `autopilotd metrics` that the status does not hold. Fed from the log's events
// (what the guard, the health loop and the notifier already log), so that no call site counts, and
// from the control server's events; read together with the status by metricsInput().

import type { ErrorCode } from '../control/protocol.js';
import type { ControlServer, ControlServerEvent } from '../control/server.js';
import type { DaemonCounters, MetricsInput } from '../control/metrics-text.js';
import type { StatusData } from '../control/protocol.js';
import { NOTIFY_EVENT_KINDS } from '../config/types.js';
import type { LogEvent } from '../log/events.js';
import type { Logger } from '../log/logger.js';

/** The codes a refusal by the server itself is given (the others answer a command, or are the client's own). */
const REFUSAL_CODES: readonly ErrorCode[] = ['bad_json', 'bad_request', 'unsupported_version', 'unknown_command', 'line_too_long', 'busy', 'timeout', 'internal', 'shutting_down'];

const zeros = (keys: readonly string[]): Record<string, number> => Object.fromEntries(keys.map((key) => [key, 0]));

export class MetricsRegistry {
  // Every label value known in advance starts at 0, so that a rate() sees the first one.
  private readonly memoryActions = zeros(['kill', 'restart-worker']);
  private memoryKillEscalations = 0;
  private readonly healthRestarts = zeros(['stall', 'heartbeat', 'probe']);
  private readonly notifyRuns = zeros(NOTIFY_EVENT_KINDS);
  private readonly notifyFailures = zeros(NOTIFY_EVENT_KINDS);
  private readonly notifySuppressed = zeros(NOTIFY_EVENT_KINDS);
  private readonly controlRejected = zeros(REFUSAL_CODES);
  private control: ControlServer | null = null;
  private readonly unsubscribe: () => void;

  constructor(logger: Logger) {
    this.unsubscribe = logger.subscribe((r) => {
      if (r.event !== null) this.heard(r.event);
    });
  }

  /** The control socket's server, once it listens: its connection figures are read at each scrape. */
  attachControl(server: ControlServer | null): void {
    this.control = server;
  }

  /** A control server event (daemon.ts passes each on). */
  controlEvent(e: ControlServerEvent): void {
    switch (e.type) {
      case 'request_failed': return this.reject(e.code);
      case 'connection_rejected': return this.reject(e.reason);
      // An idle connection closed after its timeout refused nothing: it sent no request.
      case 'request_timeout':
      case 'handler_timeout': return this.reject('timeout');
      case 'handler_error': return this.reject('internal');
      default: return undefined;
    }
  }

  close(): void {
    this.unsubscribe();
  }

  counters(extra: { logLinesDropped: number; events: number }): DaemonCounters {
    return {
      memoryActions: { ...this.memoryActions },
      memoryKillEscalations: this.memoryKillEscalations,
      healthRestarts: { ...this.healthRestarts },
      notifyRuns: { ...this.notifyRuns },
      notifyFailures: { ...this.notifyFailures },
      notifySuppressed: { ...this.notifySuppressed },
      controlRejected: { ...this.controlRejected },
      ...extra,
    };
  }

  /** Everything a scrape renders, read now. */
  input(status: StatusData, extra: { logLinesDropped: number; events: number }): MetricsInput {
    const server = this.control;
    const cpu = process.cpuUsage();
    return {
      status,
      counters: this.counters(extra),
      control: server === null ? null : {
        openConnections: server.connectionCount,
        acceptedConnections: server.stats.accepted,
        subscribers: server.subscriberCount,
        droppedSubscribers: server.stats.droppedSubscribers,
      },
      daemonProcess: { rssBytes: process.memoryUsage.rss(), cpuSeconds: (cpu.user + cpu.system) / 1e6, nodeVersion: process.version },
    };
  }

  private reject(code: ErrorCode): void {
    this.controlRejected[code] = (this.controlRejected[code] ?? 0) + 1;
  }

  private heard(e: LogEvent): void {
    switch (e.kind) {
      case 'memory-kill': return bump(this.memoryActions, 'kill');
      case 'memory-restart': return bump(this.memoryActions, 'restart-worker');
      case 'memory-kill-escalated':
        this.memoryKillEscalations += 1;
        return undefined;
      case 'health-unhealthy': return bump(this.healthRestarts, e.signal);
      case 'notify-sent': return bump(this.notifyRuns, e.event);
      case 'notify-failed':
        bump(this.notifyRuns, e.event);
        return bump(this.notifyFailures, e.event);
      case 'notify-suppressed': return bump(this.notifySuppressed, e.event);
      default: return undefined;
    }
  }
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
