import { join } from 'node:path';
import type { Config } from '../config/types.js';

/** The daemon's log file when it does not log to journald: daemon events and worker output. */
export function daemonLogPath(config: Pick<Config, 'logs'>): string {
  return join(config.logs.dir, 'autopilotd.log');
}

/**
 * A detached daemon's raw stdout and stderr: what is written before its logger exists, or by Node
 * or V8 themselves when the process dies (a fatal error). Kept apart from the rotated log, whose
 * files move under a fixed fd; normally it stays empty.
 */
export function daemonStderrPath(config: Pick<Config, 'logs'>): string {
  return join(config.logs.dir, 'autopilotd.stderr.log');
}
