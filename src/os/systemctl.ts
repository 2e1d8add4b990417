// systemctl --user and loginctl, run as programs: they are the interface systemd documents, and
// their messages are what the user would see typing the same command.
import { spawnSync } from 'node:child_process';

export interface ToolResult {
  /** The command line as the user would type it, for messages. */
  command: string;
  /** Exit status; null when the program could not be run (then `stderr` says why) or was killed. */
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Generous: `systemctl --user stop` waits for the daemon to stop its worker tree. */
const TOOL_TIMEOUT_MS = 10 * 60_000;

export function runTool(program: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ToolResult {
  const command = [program, ...args].join(' ');
  const r = spawnSync(program, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: TOOL_TIMEOUT_MS });
  if (r.error !== undefined) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${program} is not installed (not found in PATH)` : `cannot run ${program}: ${r.error.message}`;
    return { command, status: null, stdout: '', stderr: why };
  }
  return { command, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function systemctlUser(args: readonly string[], env?: NodeJS.ProcessEnv): ToolResult {
  return runTool('systemctl', ['--user', ...args], env);
}

/** The first line of what a failed tool said, or its exit status when it said nothing. */
export function toolFailure(r: ToolResult): string {
  const said = r.stderr.trim().split('\n')[0] ?? '';
  if (said !== '') return said;
  return r.status === null ? 'killed' : `exit status ${r.status}`;
}

export type Lingering = { known: true; enabled: boolean } | { known: false; why: string };

/**
 * Whether logind keeps `user`'s manager running without a login. logind answers "not logged in
 * or lingering" for a user it does not track: that is a plain no. Any other failure (no logind,
 * no system bus, as in a container) leaves it unknown.
 */
export function lingeringOf(user: string, env?: NodeJS.ProcessEnv): Lingering {
  const r = runTool('loginctl', ['show-user', user, '-p', 'Linger'], env);
  if (r.status === 0) {
    const m = /^Linger=(yes|no)$/m.exec(r.stdout);
    if (m !== null) return { known: true, enabled: m[1] === 'yes' };
    return { known: false, why: `loginctl show-user said ${JSON.stringify(r.stdout.trim())}` };
  }
  if (/not logged in or lingering/.test(r.stderr)) return { known: true, enabled: false };
  return { known: false, why: `${r.command}: ${toolFailure(r)}` };
}
