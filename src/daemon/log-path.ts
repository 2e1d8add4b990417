import { join } from 'node:path';
import type { Config } from '../config/types.js';

/** The daemon's log file when it does not log to journald: daemon events and worker output. */
export function daemonLogPath(config: Pick<Config, 'logs'>): string {
  return join(config.logs.dir, 'autopilotd.log');
}
