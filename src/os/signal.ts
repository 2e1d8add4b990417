// Sends signals to one process or one process group. "No such process" is a result ('gone');
// "not permitted" and anything else throw, naming the target and errno. A process found by a scan
// is signalled through a pidfd where the native helper has them (issue #18), else by pid after a
// start-time check.
import { closeSync } from 'node:fs';
import { loadNative, type NativeHelper } from './native.js';
import { errnoOf, type ProcessInfo, type ProcTable } from './proc-table.js';

export type SignalName = NodeJS.Signals | number;
export type SignalResult = 'sent' | 'gone';

export class SignalError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  readonly syscall: 'kill' | 'pidfd_send_signal';
  constructor(target: string, signal: SignalName, code: string, errno: number | undefined, cause: unknown, syscall: SignalError['syscall'] = 'kill') {
    super(`${syscall}(${target}, ${String(signal)}) failed: ${code}${code === 'EPERM' ? ' (operation not permitted)' : ''}`, { cause });
    this.name = 'SignalError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
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

/** Signals scanned processes through pidfds it holds (src/os/process-handles.ts). */
export interface MemberSignaller {
  signal(proc: ProcessInfo, signal: SignalName): SignalResult;
}

/**
 * Signals proc only if its pid still names the same process (same start time) and that process
 * has not exited (a zombie counts as gone): a pid from an earlier scan may since have been reused.
 * With `handles`, through the pidfd they hold for proc. Without, through a pidfd opened for this
 * one signal and checked after the open (see openCheckedPidfd), or, where pidfds cannot be had,
 * by kill(2) after the check: then a small window remains between the check and the kill.
 */
export function signalIfSame(table: ProcTable, proc: ProcessInfo, signal: SignalName, handles?: MemberSignaller): SignalResult {
  if (handles !== undefined) return handles.signal(proc, signal);
  const helper = pidfdHelper();
  const fd = helper === null ? 'no-fd' : openCheckedPidfd(helper, table, proc);
  if (fd === 'gone') return 'gone';
  if (fd === 'no-fd') return checkedKill(table, proc, signal);
  try {
    return signalThroughPidfd(helper!, table, fd, proc, signal);
  } finally {
    closeSync(fd);
  }
}

/** Today's fallback: the start-time check, then kill(2) by pid. */
export function checkedKill(table: ProcTable, proc: ProcessInfo, signal: SignalName): SignalResult {
  if (goneNow(table, proc)) return 'gone';
  return sendSignal(proc.pid, signal);
}

/**
 * pidfd_open(proc.pid), then the start-time check: the fd names whoever held the pid at the open,
 * and from then on no one else, so a matching start time read after the open proves it names proc
 * (reading before the open would leave the reuse window open). 'gone' when the pid now names
 * another process, a zombie or none; 'no-fd' when the process has no fd left to open one (EMFILE).
 */
export function openCheckedPidfd(helper: NativeHelper, table: ProcTable, proc: ProcessInfo): number | 'gone' | 'no-fd' {
  let fd: number | null;
  try {
    fd = helper.pidfdOpen(proc.pid);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EMFILE' || code === 'ENFILE') return 'no-fd';
    throw err;
  }
  if (fd === null) return 'gone';
  if (goneNow(table, proc)) {
    closeSync(fd);
    return 'gone';
  }
  return fd;
}

/**
 * Sends through an fd from openCheckedPidfd. Stat is read only to count proc as gone once it is a
 * zombie (as checkedKill does; the kernel accepts a signal to a zombie and ignores it). Whether the
 * signal goes out, and to whom, is the fd's answer alone, whoever holds the pid by now: a later
 * holder of it reads as another start time, and the send then answers 'gone' (ESRCH).
 */
export function signalThroughPidfd(helper: NativeHelper, table: ProcTable, fd: number, proc: ProcessInfo, signal: SignalName): SignalResult {
  const now = table.read(proc.pid);
  if (now !== null && now.startTimeTicks === proc.startTimeTicks && (now.state === 'Z' || now.state === 'X')) return 'gone';
  try {
    return helper.pidfdSendSignal(fd, signal);
  } catch (err) {
    const code = errnoOf(err);
    if (code === undefined) throw err;
    throw new SignalError(`pid ${proc.pid} by pidfd`, signal, code, (err as { errno?: number }).errno, err, 'pidfd_send_signal');
  }
}

export type SignalPath = { via: 'pidfd'; reason: null } | { via: 'kill'; reason: string };

let pidfdProbe: SignalPath | undefined;

/** How this process signals single processes: for the daemon to say once in its log. */
export function signalPath(env: Record<string, string | undefined> = process.env): SignalPath {
  const load = loadNative(env);
  if (!load.loaded) return { via: 'kill', reason: load.reason };
  // Kernels before 5.3 have no pidfd_open (ENOSYS); a seccomp filter may refuse it (EPERM).
  pidfdProbe ??= probePidfd(load.helper);
  return pidfdProbe;
}

/** The helper when pidfds work here, else null (the checked kill() is used). */
export function pidfdHelper(): NativeHelper | null {
  const load = loadNative();
  return load.loaded && signalPath().via === 'pidfd' ? load.helper : null;
}

function probePidfd(helper: NativeHelper): SignalPath {
  try {
    const fd = helper.pidfdOpen(process.pid);
    if (fd !== null) closeSync(fd);
    return { via: 'pidfd', reason: null };
  } catch (err) {
    return { via: 'kill', reason: `pidfd_open failed: ${errnoOf(err) ?? (err as Error).message}` };
  }
}

function goneNow(table: ProcTable, proc: ProcessInfo): boolean {
  const now = table.read(proc.pid);
  return now === null || now.startTimeTicks !== proc.startTimeTicks || now.state === 'Z' || now.state === 'X';
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
