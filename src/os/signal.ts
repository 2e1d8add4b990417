// Sends signals to one process or one process group. "No such process" is a result ('gone');
// "not permitted" and anything else throw, naming the target and errno.
import { errnoOf, type ProcessInfo, type ProcTable } from './proc-table.js';

export type SignalName = NodeJS.Signals | number;
export type SignalResult = 'sent' | 'gone';

export class SignalError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  readonly syscall = 'kill';
  constructor(target: string, signal: SignalName, code: string, errno: number | undefined, cause: unknown) {
    super(`kill(${target}, ${String(signal)}) failed: ${code}${code === 'EPERM' ? ' (operation not permitted)' : ''}`, { cause });
    this.name = 'SignalError';
    this.code = code;
    this.errno = errno;
  }
}

export function sendSignal(pid: number, signal: SignalName): SignalResult {
  // kill(0) and kill(-1) would hit our own group or every process we may signal.
  if (!Number.isSafeInteger(pid) || pid < 1) throw new RangeError(`refusing to signal pid ${pid}: not a positive pid`);
  return kill(pid, signal, `pid ${pid}`);
}

export function signalGroup(pgid: number, signal: SignalName): SignalResult {
  // kill(-1) means "every process"; group 1 is init's, never the worker's.
  if (!Number.isSafeInteger(pgid) || pgid < 2) throw new RangeError(`refusing to signal process group ${pgid}`);
  return kill(-pgid, signal, `process group ${pgid}`);
}

/**
 * Signals proc only if its pid still names the same process (same start time) and that process
 * has not exited (a zombie counts as gone): a pid from an earlier scan may since have been reused.
 * A small window remains between this check and kill(2); Node has no pidfd_send_signal to close it.
 */
export function signalIfSame(table: ProcTable, proc: ProcessInfo, signal: SignalName): SignalResult {
  const now = table.read(proc.pid);
  if (now === null || now.startTimeTicks !== proc.startTimeTicks || now.state === 'Z' || now.state === 'X') return 'gone';
  return sendSignal(proc.pid, signal);
}

function kill(target: number, signal: SignalName, what: string): SignalResult {
  try {
    process.kill(target, signal);
    return 'sent';
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ESRCH') return 'gone';
    // Node's own argument errors (e.g. ERR_UNKNOWN_SIGNAL) are caller mistakes: rethrown as they are.
    if (code === undefined || (err as { syscall?: string }).syscall !== 'kill') throw err;
    throw new SignalError(what, signal, code, (err as { errno?: number }).errno, err);
  }
}
