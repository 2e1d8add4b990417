// The native helper (src/native/autopilotd_native.c): what Node cannot do, typed. Node has no
// AF_UNIX datagram socket (sd_notify), no prctl (child subreaper), no waitpid() of a process it did
// not spawn, and no pidfd. The helper is optional: npm install may fail to build it, and then
// loadNative() says why in one reason string, for `start` and `status` to show (issue #16).

import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set to 1, the helper is treated as absent: tests exercise the fallbacks with it. Internal. */
export const NO_NATIVE_ENV = '_AUTOPILOTD_NO_NATIVE';

/** How reap() found a child that has ended: its exit code or the signal that killed it. */
export interface ReapedChild {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NativeHelper {
  /** Sends one datagram from this process to `socketPath` (a path, or `@name` for an abstract address). */
  notify(socketPath: string, message: string): void;
  /** prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to this process. */
  setChildSubreaper(): void;
  /**
   * waitpid(pid, WNOHANG): null while it runs. Throws ECHILD for a pid that is not our child. Only
   * for adopted orphans: reaping a child Node spawned steals its exit from libuv.
   */
  reap(pid: number): ReapedChild | null;
  /**
   * pidfd_open(pid): an fd naming this process and no later holder of its pid; close it with
   * fs.closeSync. null when no process has that pid (ESRCH).
   */
  pidfdOpen(pid: number): number | null;
  /** pidfd_send_signal(): 'gone' (ESRCH) once that process has exited, whoever holds its pid now. */
  pidfdSendSignal(fd: number, signal: NodeJS.Signals | number): 'sent' | 'gone';
  /** getsockopt(SO_PEERCRED) on a connected AF_UNIX socket's fd: who is at the other end. */
  peerCred(fd: number): PeerCred;
}

/** The peer of a unix socket as the kernel recorded it at connect(). */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export type NativeLoad =
  | { loaded: true; helper: NativeHelper; path: string }
  | { loaded: false; reason: string };

const ADDON_FILE = join('build', 'Release', 'autopilotd_native.node');
const FUNCTIONS = ['notify', 'setChildSubreaper', 'reap', 'pidfdOpen', 'pidfdSendSignal', 'peerCred'] as const;
type RawAddon = Record<(typeof FUNCTIONS)[number], (...args: unknown[]) => unknown>;

/**
 * The package's root: the nearest directory up from this module with binding.gyp in it. This
 * module runs from dist/src/os/ (tests) and bundled from dist/bin/ (the CLI), in the repository
 * and in an installed package alike; node-gyp builds into <root>/build/Release in both.
 */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

let cached: NativeLoad | null = null;

/** Loads the helper once per process (a dlopen cannot be undone); `env` may make it absent. */
export function loadNative(env: Record<string, string | undefined> = process.env): NativeLoad {
  if (env[NO_NATIVE_ENV] === '1') return { loaded: false, reason: `disabled by ${NO_NATIVE_ENV}=1` };
  cached ??= tryLoad();
  return cached;
}

function tryLoad(): NativeLoad {
  const root = packageRoot();
  if (root === null) return { loaded: false, reason: 'binding.gyp not found above the installed files' };
  const path = join(root, ADDON_FILE);
  if (!existsSync(path)) {
    const log = join(root, 'build', 'native-build.log');
    return { loaded: false, reason: `not built: ${path} is missing${existsSync(log) ? ` (build log: ${log})` : ''}; \`npm rebuild\` builds it` };
  }
  const module = { exports: {} as Partial<RawAddon> };
  try {
    process.dlopen(module, path);
  } catch (err) {
    return { loaded: false, reason: `cannot load ${path}: ${(err as Error).message.split('\n')[0]}` };
  }
  const missing = FUNCTIONS.filter((name) => typeof module.exports[name] !== 'function');
  if (missing.length > 0) return { loaded: false, reason: `${path} lacks ${missing.join(', ')}: built from other sources; \`npm rebuild\` rebuilds it` };
  return { loaded: true, helper: wrap(module.exports as RawAddon), path };
}

function wrap(raw: RawAddon): NativeHelper {
  return {
    notify: (socketPath, message) => { raw.notify(socketPath, message); },
    setChildSubreaper: () => { raw.setChildSubreaper(); },
    reap: (pid) => {
      const r = raw.reap(pid) as { pid: number; code: number | null; signal: number | null } | null;
      return r === null ? null : { pid: r.pid, code: r.code, signal: r.signal === null ? null : signalName(r.signal) };
    },
    pidfdOpen: (pid) => {
      try {
        return raw.pidfdOpen(pid) as number;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return null;
        throw err;
      }
    },
    pidfdSendSignal: (fd, signal) => {
      const number = typeof signal === 'number' ? signal : constants.signals[signal];
      if (number === undefined) throw new TypeError(`pidfdSendSignal: unknown signal ${String(signal)}`);
      try {
        raw.pidfdSendSignal(fd, number);
        return 'sent';
      } catch (err) {
        // As kill(): the process already gone is a result, not an error.
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
        throw err;
      }
    },
    peerCred: (fd) => raw.peerCred(fd) as PeerCred,
  };
}

function signalName(number: number): NodeJS.Signals {
  const entry = Object.entries(constants.signals).find(([, n]) => n === number);
  return (entry?.[0] ?? `SIG${number}`) as NodeJS.Signals;
}
