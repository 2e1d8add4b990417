// How a client command finds the running daemon. First the socket the configuration names. A
// daemon keeps listening where it started, so when the file's socket_path has changed since, the
// pid file and the instance record beside it say where the daemon is. A file that can no longer be
// read tells neither: then only a daemon that was started with that very file is taken, found
// through the pid file the rest of the configuration names (issue #14, items 3 and 5).
//
// What is trusted: the configuration's socket, when the file was read and socket_path and pid_file
// are valid; the instance record, only when the pid file agrees with it, the pid is a live process
// of this user, and the recorded socket answers with a status naming that very pid.

import { dirname } from 'node:path';
import { sendRequest } from '../control/client.js';
import type { StatusData } from '../control/protocol.js';
import type { LoadedConfig } from '../config/types.js';
import { readInstanceRecord, readPidFile, type InstanceRecord } from '../os/pid-file.js';
import { checkPrivateDir } from '../os/private-dir.js';
import { ProcTable } from '../os/proc-table.js';
import { isLiveProcessOf } from '../os/process-alive.js';
import { assertClientDirs, loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT } from './exit-codes.js';

/** Where the daemon listens, and its status as it answered there. */
export interface FoundDaemon {
  socketPath: string;
  status: StatusData;
}

export interface ConfigForFinding {
  loaded: LoadedConfig;
  /** The problems, one per line, when `loaded` is only the valid rest of the configuration. */
  problems: string | null;
  /**
   * False when the file could not be read or parsed, or its socket_path or pid_file is invalid:
   * then `loaded` names the default socket (another daemon's, maybe), and only a daemon started
   * with this very file counts.
   */
  locationKnown: boolean;
}

/** Keys that say where a daemon is: a problem with one of them leaves `loaded` pointing elsewhere. */
const LOCATION_KEYS = new Set(['socket_path', 'pid_file']);

/**
 * Loads the configuration exactly as the daemon does, so every command finds the same daemon. A
 * config file named explicitly (--config, AUTOPILOTD_CONFIG) must be readable: otherwise exit 78,
 * as for every command. Other problems do not lock the user out of a daemon started before the
 * file broke: the valid rest is returned with the problems.
 */
export async function loadToFindDaemon(p: ParsedCommand): Promise<ConfigForFinding> {
  const { ConfigError } = await import('../config/load.js');
  const { CONFIG_ENV, CONFIG_FLAG } = await import('../config/file.js');
  const { INSTANCE_FLAG } = await import('../config/instance.js');
  let target: ConfigForFinding;
  try {
    target = { loaded: await loadForCommand(p), problems: null, locationKnown: true };
  } catch (err) {
    if (!(err instanceof ConfigError) || err.bestEffort === null) throw err;
    const namedFileUnreadable = err.problems.some((q) => q.key === '' && (q.flag === CONFIG_FLAG || q.flag === INSTANCE_FLAG || q.envName === CONFIG_ENV));
    if (namedFileUnreadable) throw err;
    const fileUnread = err.problems.some((q) => q.source === 'file' && q.key === '');
    const locationInvalid = err.problems.some((q) => LOCATION_KEYS.has(q.key));
    target = { loaded: err.bestEffort, problems: err.message, locationKnown: !fileUnread && !locationInvalid };
  }
  await assertClientDirs(p, target.loaded);
  return target;
}

/** Where findDaemon's notices go: stderr, unless the caller (`status --watch`) says each once. */
export type Notice = (text: string) => void;

const toStderr: Notice = (text) => void process.stderr.write(text);

/** A Notice that passes each distinct text on once: a watch looks every interval. */
export function onceEach(notice: Notice = toStderr): Notice {
  const said = new Set<string>();
  return (text) => {
    if (said.has(text)) return;
    said.add(text);
    notice(text);
  };
}

/**
 * The daemon this configuration names, or null when none runs. Notices (problems, a moved socket)
 * go to `notice` (stderr). Throws a ControlError when a socket answers badly, and exits 78
 * (CliFailure) when the configuration is too broken to tell and no daemon started with its file
 * was found.
 */
export async function findDaemon(target: ConfigForFinding, timeoutMs?: number, notice: Notice = toStderr): Promise<FoundDaemon | null> {
  const { loaded } = target;
  const { config } = loaded;
  if (target.locationKnown) {
    if (target.problems !== null) {
      notice(`autopilotd: warning: the configuration has problems (autopilotd config check); finding the daemon with the rest:\n${target.problems}\n`);
    }
    const atSocket = await statusAt(config.socket_path, timeoutMs);
    if (atSocket !== null) return { socketPath: config.socket_path, status: atSocket };
    const recorded = await daemonFromPidFile(config.pid_file, timeoutMs);
    if (recorded === null) return null;
    if (recorded.socketPath !== config.socket_path) notice(movedNotice(recorded, loaded));
    return recorded;
  }

  // The socket and pid file from the rest may be the default daemon's: a daemon found there counts
  // only if it was started with this file. A failure there is no failure of this file's daemon,
  // so it is told, not thrown.
  const notes: string[] = [];
  const startedHere = (configPath: string | null): boolean => configPath === loaded.path;
  const warn = (found: string): void => {
    notice(`autopilotd: warning: the configuration has problems (autopilotd config check); found the daemon ${found}:\n${target.problems}\n`);
  };
  try {
    const atSocket = await statusAt(config.socket_path, timeoutMs);
    if (atSocket !== null && startedHere(atSocket.daemon.config_path)) {
      warn(`(pid ${atSocket.daemon.pid}) started with it at ${config.socket_path}`);
      return { socketPath: config.socket_path, status: atSocket };
    }
  } catch (err) {
    notes.push(`${config.socket_path}: ${(err as Error).message}`);
  }
  try {
    const recorded = await daemonFromPidFile(config.pid_file, timeoutMs);
    if (recorded !== null && startedHere(recorded.record.config_path)) {
      warn(`(pid ${recorded.record.pid}) through its pid file ${config.pid_file}`);
      return recorded;
    }
  } catch (err) {
    notes.push(`${config.pid_file}: ${(err as Error).message}`);
  }
  throw new CliFailure(
    `invalid configuration:\n${target.problems}\n` +
      `no daemon started with ${loaded.path ?? 'no config file'} answers at ${config.socket_path} or through the pid file ${config.pid_file}` +
      `${notes.length === 0 ? '' : ` (${notes.join('; ')})`}; fix the file to reach its daemon (autopilotd config check)`,
    EXIT.config,
  );
}

/**
 * The daemon the pid file and its instance record name, confirmed: both name the same pid, that
 * pid is a live process of ours, and the recorded socket answers with a status of that pid. null
 * otherwise (no such files, a stale record, a reused pid, nothing listening).
 */
export async function daemonFromPidFile(pidFile: string, timeoutMs?: number): Promise<(FoundDaemon & { record: InstanceRecord }) | null> {
  const pid = readOrNull(() => readPidFile(pidFile));
  const record = readOrNull(() => readInstanceRecord(pidFile));
  if (pid === null || record === null || record.pid !== pid || record.socket_path === null) return null;
  if (!isLiveProcessOf(new ProcTable(), pid, process.getuid!())) return null;
  // The configured socket's directory was checked (assertClientDirs); the recorded one is checked here.
  if (checkPrivateDir(dirname(record.socket_path)) !== null) return null;
  const status = await statusAt(record.socket_path, timeoutMs);
  if (status === null || status.daemon.pid !== pid) return null;
  return { socketPath: record.socket_path, status, record };
}

/** The line saying that the daemon listens elsewhere than the configuration says. */
export function movedNotice(found: FoundDaemon & { record: InstanceRecord }, loaded: LoadedConfig): string {
  const { pid, config_path: startedWith } = found.record;
  const now = loaded.config.socket_path;
  if (startedWith === loaded.path) {
    return `autopilotd: the daemon (pid ${pid}) listens at ${found.socketPath}; the configuration now says ${now} (restart the daemon to move it)\n`;
  }
  // Another configuration that shares this pid file: the same daemon slot, started from elsewhere.
  return `autopilotd: the daemon (pid ${pid}) of pid file ${loaded.config.pid_file} was started with ${startedWith ?? 'no config file'} and listens at ${found.socketPath}; this configuration says ${now}\n`;
}

/** The status at `socketPath`, or null when nothing listens there. */
async function statusAt(socketPath: string, timeoutMs?: number): Promise<StatusData | null> {
  try {
    return (await sendRequest(socketPath, 'status', undefined, timeoutMs === undefined ? {} : { timeoutMs })) as StatusData;
  } catch (err) {
    if ((err as { code?: string }).code === 'not_running') return null;
    throw err;
  }
}

/** A pid file path below a regular file (ENOTDIR) cannot exist: no file, like ENOENT. */
function readOrNull<T>(read: () => T | null): T | null {
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw new CliFailure((err as Error).message, EXIT.failure); // names the path and errno
  }
}
