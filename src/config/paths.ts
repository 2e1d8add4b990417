// Path values: `~` is the home directory; other relative paths resolve against the directory
// of the layer that gave them (the config file's directory, or the cwd for environment and flags).
import * as path from 'node:path';

/** Expands `~` and `~/...` and makes the path absolute against `baseDir`. `~user` is not expanded. */
export function resolveConfigPath(text: string, homeDir: string, baseDir: string): string {
  if (text === '~') return path.resolve(homeDir);
  if (text.startsWith('~/')) return path.resolve(homeDir, text.slice(2));
  return path.resolve(baseDir, text);
}

/** sun_path holds 108 bytes including the terminating NUL (unix(7)). */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * The socket is first bound at a temporary name beside it, `<dir>/.` and 8 hex digits (bindSocket
 * in src/control/socket-file.ts), so the directory must leave room for that name too.
 */
export const SOCKET_TEMP_NAME_BYTES = '/.'.length + 8;

/** The longest path the daemon binds for `socketPath`: itself or its temporary name. */
export function longestBoundSocketPath(socketPath: string): number {
  return Math.max(Buffer.byteLength(socketPath), Buffer.byteLength(path.dirname(socketPath)) + SOCKET_TEMP_NAME_BYTES);
}
