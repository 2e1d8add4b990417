// Reads the process table straight from /proc: no `ps`, no child processes, one reused buffer.
// A process can exit at any point of a scan; "gone" (ENOENT/ESRCH) is a result, so it is skipped.
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { endianness } from 'node:os';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** One letter from /proc/<pid>/stat: R, S, D, Z (zombie), X (dead), T, t, I, ... */
  state: string;
  /** Kernel's comm (≤ 15 bytes); may contain spaces and parentheses. */
  comm: string;
  /** Start time in clock ticks since boot: with pid, identifies one process over its life. */
  startTimeTicks: number;
  rssBytes: number;
  /** PF_KTHREAD in the stat flags: a kernel thread, which has no memory, environment or user program. */
  kernelThread: boolean;
  /** CPU time used so far, user + system (utime + stime), in clock ticks (ProcTable.clockTicksPerSecond). */
  cpuTicks: number;
  /** CPU time of its children it has waited for (cutime + cstime), in clock ticks. */
  childCpuTicks: number;
  /** Its threads (num_threads): each has a children list of its own (childrenOf). */
  threads: number;
}

/**
 * A process as the memory figures see it: its stat, plus VmSwap from /proc/<pid>/status. Read only
 * for the processes being sampled (tree members, named candidates), never for a full scan: a status
 * read costs about as much again as the stat read.
 */
export interface SampledProcess extends ProcessInfo {
  /** Bytes of its memory swapped out (not part of rssBytes); 0 when the kernel shows none. */
  swapBytes: number;
}

/**
 * What /proc/<pid>/environ says of one NAME=VALUE entry. `empty`: zero bytes, which is what a
 * process with no memory (kernel thread, exiting) shows, and what any process shows while inside
 * execve: between the switch to its new memory and the copy of its new environment (exec_mmap to
 * create_elf_tables) it has none. null: the process is gone or its environ is not readable.
 */
export type EnvMarker = 'present' | 'absent' | 'empty' | null;

export interface MemInfo {
  totalBytes: number;
  availableBytes: number;
  /** Swap space configured (SwapTotal; 0 when missing). With none, no process can have VmSwap above 0. */
  swapTotalBytes: number;
}

/** Percent of wall time (0-100) over the last 10 s, from /proc/pressure/memory. */
export interface MemoryPressure {
  someAvg10: number;
  fullAvg10: number;
}

/** Fits any stat, status or meminfo, and nearly every environ, in one read. */
const BUFFER_BYTES = 64 * 1024;
/**
 * execve takes at most 6 MiB of arguments and environment (3/4 of _STK_LIM); a larger environ
 * was moved there by prctl(PR_SET_MM) and is reported as not readable.
 */
const MAX_ENVIRON_BYTES = 8 * 1024 * 1024;
/** The longest entry of a children file: "4194304 " (PID_MAX_LIMIT), with room to spare. */
const PID_LIST_ENTRY_MAX_BYTES = 16;
/** Used only when <procRoot>/self/auxv cannot be read (e.g. a fake tree without it). */
const FALLBACK_PAGE_BYTES = 4096;
/** auxv keys of the page size and of the clock tick rate (USER_HZ), from <elf.h>. */
const AT_PAGESZ = 6n;
const AT_CLKTCK = 17n;
/** USER_HZ on every Linux architecture Node runs on; used only when auxv cannot be read. */
const FALLBACK_CLOCK_TICKS = 100;

const CLOSE_PAREN = 0x29;
const SPACE = 0x20;
const MINUS = 0x2d;
const NEWLINE = 0x0a;
const OPEN_PAREN = 0x28;
const ZERO = 0x30;
const NINE = 0x39;
const TAB = 0x09;
/** The status line of the swapped-out anonymous memory (Linux 2.6.34+), in kB. */
const VM_SWAP = Buffer.from('\nVmSwap:', 'latin1');

// Fields after the comm's closing ')', counted from 0 (= state, stat field 3); see proc(5).
const F_PPID = 1;
const F_PGRP = 2;
const F_SESSION = 3;
const F_FLAGS = 6;
const F_UTIME = 11;
const F_STIME = 12;
const F_CUTIME = 13;
const F_CSTIME = 14;
const F_NUM_THREADS = 17;
const F_STARTTIME = 19;
const F_RSS = 21;
const LAST_FIELD = F_RSS;
/** From <linux/sched.h>; part of the kernel ABI shown in stat since Linux 2.6. */
const PF_KTHREAD = 0x00200000;

export interface PidCursor {
  lastPid: number;
  pidMax: number;
}

export class ProcTable {
  /** Read once: pid_max does not change under a running daemon in practice. */
  private pidMax: number | null | undefined;
  readonly procRoot: string;
  /**
   * From AT_PAGESZ in <procRoot>/self/auxv: the value the kernel itself hands to every process,
   * which is what sysconf(_SC_PAGESIZE) returns, and Node exposes no sysconf. Falls back to 4096.
   */
  readonly pageBytes: number;
  /** From AT_CLKTCK in auxv (what sysconf(_SC_CLK_TCK) returns): the unit of stat's CPU times. Falls back to 100. */
  readonly clockTicksPerSecond: number;
  private readonly buf = Buffer.allocUnsafe(BUFFER_BYTES);
  /** For the rare environ larger than `buf` (allocated on first need). */
  private largeBuf: Buffer | null = null;
  private readonly fields = new Float64Array(LAST_FIELD + 1);

  constructor(procRoot = '/proc') {
    this.procRoot = procRoot;
    const auxv = this.readAuxv();
    this.pageBytes = auxv.get(AT_PAGESZ) ?? FALLBACK_PAGE_BYTES;
    this.clockTicksPerSecond = auxv.get(AT_CLKTCK) ?? FALLBACK_CLOCK_TICKS;
  }

  /** Every process visible now. Threads are not listed (/proc shows thread-group leaders only). */
  scan(): ProcessInfo[] {
    const out: ProcessInfo[] = [];
    for (const pid of this.listPids()) {
      const info = this.read(pid);
      if (info !== null) out.push(info);
    }
    return out;
  }

  /**
   * The pids visible now, without reading any of their files: one directory listing, about a
   * twentieth of the cost of scan(). Some may be gone by the time they are read.
   */
  listPids(): number[] {
    const pids: number[] = [];
    for (const name of readdirSync(this.procRoot)) {
      const first = name.charCodeAt(0);
      if (first < ZERO || first > NINE) continue;
      const pid = Number(name);
      if (Number.isSafeInteger(pid)) pids.push(pid);
    }
    return pids;
  }

  /**
   * The children of every thread of `pid`, from /proc/<pid>/task/<tid>/children: a child is listed
   * under the thread that forked it, an adopted orphan under any thread of its new parent. One
   * directory listing (the threads) and one small read per thread; no listing of /proc. null when
   * the process is gone; `whole` false when a thread went between the listing and its read (its
   * children may have moved to a thread already read). Needs CONFIG_PROC_CHILDREN (Linux 3.5+).
   * `leaderOnly`: the main thread's list alone, no listing (for a process known to have one thread).
   */
  childrenOf(pid: number, leaderOnly = false): { pids: number[]; whole: boolean } | null {
    const pids: number[] = [];
    if (leaderOnly) return this.readPidList(`${this.procRoot}/${pid}/task/${pid}/children`, pids) ? { pids, whole: true } : null;
    let tids: string[];
    try {
      tids = readdirSync(`${this.procRoot}/${pid}/task`);
    } catch (err) {
      if (isGone(err) || errnoOf(err) === 'EACCES') return null;
      throw err;
    }
    let whole = true;
    for (const tid of tids) {
      if (!this.readPidList(`${this.procRoot}/${pid}/task/${tid}/children`, pids)) whole = false;
    }
    return { pids, whole };
  }

  /** Appends the space-separated pids of a children file to `out`; false when it is gone. */
  private readPidList(path: string, out: number[]): boolean {
    const fd = this.open(path);
    if (fd === null) return false;
    try {
      // A number may straddle two reads: the kernel hands out at most a page per call (seq_file),
      // and stops short of a page only at the end, which saves the read that would return 0.
      let value = -1;
      for (;;) {
        const n = this.readChunk(fd, path, 0, this.buf.length);
        if (n === null) return false;
        for (let i = 0; i < n; i++) {
          const c = this.buf[i] ?? SPACE;
          if (c >= ZERO && c <= NINE) value = (value < 0 ? 0 : value * 10) + (c - ZERO);
          else if (value >= 0) {
            out.push(value);
            value = -1;
          }
        }
        if (n === 0 || n < this.pageBytes - PID_LIST_ENTRY_MAX_BYTES) break;
      }
      if (value >= 0) out.push(value);
      return true;
    } finally {
      closeSync(fd);
    }
  }

  /** null when the process does not exist (any more). Throws on a stat line it cannot parse. */
  read(pid: number): ProcessInfo | null {
    const path = `${this.procRoot}/${pid}/stat`;
    const length = this.readFile(path);
    if (length === null) return null;
    return this.parseStat(pid, path, length);
  }

  /**
   * The command line's words, from the first `maxBytes` of /proc/<pid>/cmdline (status's tree
   * listing: enough to tell processes apart); [] for a kernel thread or zombie; null when gone.
   */
  cmdline(pid: number, maxBytes = 1024): string[] | null {
    const path = `${this.procRoot}/${pid}/cmdline`;
    const fd = this.open(path);
    if (fd === null) return null;
    try {
      const n = this.readChunk(fd, path, 0, Math.min(maxBytes, this.buf.length));
      if (n === null) return null;
      const words = this.buf.toString('utf8', 0, n).split('\0');
      if (words.at(-1) === '') words.pop();
      return words;
    } finally {
      closeSync(fd);
    }
  }

  /** Real uid (first field of "Uid:" in status): the one kill(2) permission is checked against. */
  uidOf(pid: number): number | null {
    const path = `${this.procRoot}/${pid}/status`;
    const length = this.readFile(path);
    if (length === null) return null;
    const text = this.buf.toString('latin1', 0, length);
    const match = /^Uid:\s+(\d+)/m.exec(text);
    if (match === null) throw new Error(`malformed ${path}: no "Uid:" line`);
    return Number(match[1]);
  }

  /**
   * VmSwap of /proc/<pid>/status in bytes: 0 when the status has no VmSwap line (a kernel thread or
   * a zombie, which have no memory; a kernel before 2.6.34); null when the process is gone.
   */
  swapBytes(pid: number): number | null {
    const path = `${this.procRoot}/${pid}/status`;
    const length = this.readFile(path);
    if (length === null) return null;
    const data = this.buf.subarray(0, length);
    const at = data.indexOf(VM_SWAP);
    if (at === -1) return 0;
    let i = at + VM_SWAP.length;
    while (data[i] === SPACE || data[i] === TAB) i++;
    const start = i;
    let kib = 0;
    for (let c = data[i] ?? 0; c >= ZERO && c <= NINE; c = data[++i] ?? 0) kib = kib * 10 + (c - ZERO);
    if (i === start) throw new Error(`malformed ${path}: VmSwap is not a number`);
    return kib * 1024;
  }

  /**
   * The processes with their swap (one status read each). A process gone since its stat was read
   * keeps swap 0: it was a member when sampled, and the next sample drops it.
   */
  withSwap(procs: readonly ProcessInfo[]): SampledProcess[] {
    return procs.map((p) => ({ ...p, swapBytes: this.swapBytes(p.pid) ?? 0 }));
  }

  /**
   * Whether NAME=VALUE is one of the NUL-separated entries of /proc/<pid>/environ (the environment
   * the process was exec'd with). null when the process is gone or its environ is not readable;
   * an empty environ is `false` (see envMarker to tell it apart).
   */
  hasEnvMarker(pid: number, name: string, value: string): boolean | null {
    const marker = this.envMarker(pid, name, value);
    return marker === null ? null : marker === 'present';
  }

  /** hasEnvMarker, telling an empty environ (`empty`) from one without the entry (`absent`). */
  envMarker(pid: number, name: string, value: string): EnvMarker {
    // Searching for "\0NAME=VALUE\0" matches whole entries only; a NUL is put before the first
    // entry, and one after the last in case the process rewrote its environment without one.
    const needle = Buffer.from(`\0${name}=${value}\0`);
    if (needle.length > BUFFER_BYTES / 2) throw new RangeError(`environment marker too long: ${needle.length} bytes`);
    const path = `${this.procRoot}/${pid}/environ`;
    const fd = this.open(path);
    if (fd === null) return null;
    try {
      // The whole environ in one read() call: the kernel holds the process's memory for one call
      // only, so an execve (or exit) between two calls frees it and the second call returns 0, as
      // at the end of a shorter environ, and a marker past the first part would be missed. When
      // the data fills the buffer it may go on: read it again from the start with a larger one.
      for (let buf: Buffer = this.buf; ; buf = this.environBuffer(buf.length * 2)) {
        buf[0] = 0;
        // One byte stays free for the NUL appended at the end of the data.
        const room = buf.length - 2;
        const n = this.readAt(fd, path, buf, 1, room, 0);
        if (n === null) return null;
        if (n === room) {
          if (buf.length >= MAX_ENVIRON_BYTES) return null;
          continue;
        }
        if (n === 0) return 'empty';
        buf[n + 1] = 0;
        return buf.subarray(0, n + 2).indexOf(needle) !== -1 ? 'present' : 'absent';
      }
    } finally {
      closeSync(fd);
    }
  }

  /** A buffer of at least `bytes` for environs larger than the shared one, kept for the next. */
  private environBuffer(bytes: number): Buffer {
    if (this.largeBuf === null || this.largeBuf.length < bytes) this.largeBuf = Buffer.allocUnsafe(Math.min(bytes, MAX_ENVIRON_BYTES));
    return this.largeBuf;
  }

  memInfo(): MemInfo {
    const path = `${this.procRoot}/meminfo`;
    const length = this.readFile(path);
    if (length === null) throw new Error(`cannot read ${path}: missing or not readable`);
    const text = this.buf.toString('latin1', 0, length);
    const kib = (key: string): number | null => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m === null ? null : Number(m[1]) * 1024;
    };
    const totalBytes = kib('MemTotal');
    if (totalBytes === null) throw new Error(`malformed ${path}: no MemTotal`);
    // MemAvailable exists since Linux 3.14; before that, free + page cache is the usual estimate.
    const availableBytes = kib('MemAvailable') ?? (kib('MemFree') ?? 0) + (kib('Buffers') ?? 0) + (kib('Cached') ?? 0);
    return { totalBytes, availableBytes, swapTotalBytes: kib('SwapTotal') ?? 0 };
  }

  /**
   * The kernel's pid allocation cursor (the last pid handed out in this pid namespace) and
   * pid_max; null where ns_last_pid is missing (kernels built without CONFIG_CHECKPOINT_RESTORE).
   */
  pidCursor(): PidCursor | null {
    const lastPid = this.readInteger(`${this.procRoot}/sys/kernel/ns_last_pid`);
    if (lastPid === null) return null;
    this.pidMax ??= this.readInteger(`${this.procRoot}/sys/kernel/pid_max`);
    return this.pidMax === null ? null : { lastPid, pidMax: this.pidMax };
  }

  private readInteger(path: string): number | null {
    const length = this.readFile(path);
    if (length === null) return null;
    const n = Number(this.buf.toString('latin1', 0, length).trim());
    return Number.isSafeInteger(n) ? n : null;
  }

  /** null when the kernel has no PSI (file missing, or booted with psi=0: EOPNOTSUPP). */
  pressure(): MemoryPressure | null {
    const path = `${this.procRoot}/pressure/memory`;
    let length: number | null;
    try {
      length = this.readFile(path);
    } catch (err) {
      if (errnoOf(err) === 'EOPNOTSUPP') return null;
      throw err;
    }
    if (length === null) return null;
    const text = this.buf.toString('latin1', 0, length);
    const some = /^some avg10=([\d.]+)/m.exec(text);
    const full = /^full avg10=([\d.]+)/m.exec(text);
    if (some === null || full === null) throw new Error(`malformed ${path}: no "some avg10" or "full avg10"`);
    return { someAvg10: Number(some[1]), fullAvg10: Number(full[1]) };
  }

  private parseStat(pid: number, path: string, length: number): ProcessInfo {
    const buf = this.buf;
    // comm may hold ')' itself, so the comm ends at the LAST ')'; nothing after it can hold one.
    const close = buf.lastIndexOf(CLOSE_PAREN, length - 1);
    const open = buf.indexOf(OPEN_PAREN);
    if (open <= 0 || open >= length || close < open || close + 3 >= length || buf[close + 1] !== SPACE) {
      throw new Error(`malformed ${path}: ${JSON.stringify(buf.toString('latin1', 0, Math.min(length, 120)))}`);
    }
    const leadingPid = Number(buf.toString('latin1', 0, open - 1));
    if (leadingPid !== pid) throw new Error(`malformed ${path}: starts with pid ${leadingPid}`);
    const state = String.fromCharCode(buf[close + 2] ?? 0);
    const fields = this.fields;
    let i = close + 3; // the space after the state letter
    for (let field = 1; field <= LAST_FIELD; field++) {
      if (i >= length || buf[i] !== SPACE) throw new Error(`malformed ${path}: field ${field + 3} missing`);
      i++;
      const negative = i < length && buf[i] === MINUS;
      if (negative) i++;
      const start = i;
      let value = 0;
      while (i < length) {
        const c = buf[i] ?? 0;
        if (c < ZERO || c > NINE) break;
        value = value * 10 + (c - ZERO);
        i++;
      }
      if (i === start || (i < length && buf[i] !== SPACE && buf[i] !== NEWLINE)) {
        throw new Error(`malformed ${path}: field ${field + 3} is not a number`);
      }
      fields[field] = negative ? -value : value;
    }
    return {
      pid,
      ppid: fields[F_PPID] ?? 0,
      pgid: fields[F_PGRP] ?? 0,
      sid: fields[F_SESSION] ?? 0,
      state,
      comm: buf.toString('utf8', open + 1, close),
      startTimeTicks: fields[F_STARTTIME] ?? 0,
      rssBytes: (fields[F_RSS] ?? 0) * this.pageBytes,
      kernelThread: ((fields[F_FLAGS] ?? 0) & PF_KTHREAD) !== 0,
      cpuTicks: (fields[F_UTIME] ?? 0) + (fields[F_STIME] ?? 0),
      childCpuTicks: (fields[F_CUTIME] ?? 0) + (fields[F_CSTIME] ?? 0),
      threads: fields[F_NUM_THREADS] ?? 1,
    };
  }

  /** The positive values of <procRoot>/self/auxv by key; empty when it cannot be read. */
  private readAuxv(): Map<bigint, number> {
    const values = new Map<bigint, number>();
    const length = this.readFile(`${this.procRoot}/self/auxv`);
    if (length === null) return values;
    const data = this.buf.subarray(0, length);
    // auxv is an array of (key, value) pairs of native unsigned longs, ended by AT_NULL.
    const wordBytes = is64BitArch() ? 8 : 4;
    const little = endianness() === 'LE';
    for (let at = 0; at + 2 * wordBytes <= data.length; at += 2 * wordBytes) {
      const key = readWord(data, at, wordBytes, little);
      if (key === 0n) break;
      const value = Number(readWord(data, at + wordBytes, wordBytes, little));
      if (value > 0) values.set(key, value);
    }
    return values;
  }

  /** Whole small file into this.buf; its length, or null when the process or file is gone. */
  private readFile(path: string): number | null {
    const fd = this.open(path);
    if (fd === null) return null;
    try {
      let length = 0;
      for (;;) {
        const room = this.buf.length - length;
        const n = this.readChunk(fd, path, length, room);
        if (n === null) return null;
        if (n === 0) return length;
        length += n;
        // /proc text files are generated whole on the first read (seq_file), so a short read
        // that ends a line is the entire file: this saves the read that would return 0 per process.
        if (n < room && this.buf[length - 1] === NEWLINE) return length;
        if (length === this.buf.length) throw new Error(`${path} is larger than ${this.buf.length} bytes`);
      }
    } finally {
      closeSync(fd);
    }
  }

  private open(path: string): number | null {
    try {
      return openSync(path, 'r');
    } catch (err) {
      // EACCES: hidepid=1 hides other users' processes, which can never be ours anyway; and
      // environ of another user's process is not readable without CAP_SYS_PTRACE.
      if (isGone(err) || errnoOf(err) === 'EACCES') return null;
      throw err;
    }
  }

  private readChunk(fd: number, path: string, offset: number, maxBytes: number): number | null {
    return this.readAt(fd, path, this.buf, offset, maxBytes, null);
  }

  private readAt(fd: number, path: string, buf: Buffer, offset: number, maxBytes: number, position: number | null): number | null {
    try {
      return readSync(fd, buf, offset, maxBytes, position);
    } catch (err) {
      // ESRCH: the process exited (and was reaped) after open; EACCES: environ of a process that
      // turned non-dumpable or changed credentials after open.
      if (isGone(err) || errnoOf(err) === 'EACCES') return null;
      throw withPath(err, path);
    }
  }
}

/** readSync's errors name no path; this one does, keeping code, errno and syscall. */
function withPath(err: unknown, path: string): Error {
  const code = errnoOf(err) ?? 'unknown error';
  return Object.assign(new Error(`read ${path} failed: ${code}`, { cause: err }), {
    code,
    errno: (err as { errno?: number }).errno,
    syscall: 'read',
    path,
  });
}

function isGone(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'ENOENT' || code === 'ESRCH';
}

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function is64BitArch(): boolean {
  return !['ia32', 'arm', 'mips', 'mipsel', 'ppc', 's390'].includes(process.arch);
}

function readWord(data: Buffer, at: number, wordBytes: number, little: boolean): bigint {
  if (wordBytes === 8) return little ? data.readBigUInt64LE(at) : data.readBigUInt64BE(at);
  return BigInt(little ? data.readUInt32LE(at) : data.readUInt32BE(at));
}
