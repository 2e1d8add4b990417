// Instances: several daemons on one machine, one per agent, each named. `--instance NAME` (and the
// template unit autopilotd@NAME.service, which passes it) reads ~/.autopilot/NAME.toml and gives
// the daemon its own default socket, PID file and log directory. Every derived name carries
// `autopilotd@NAME`, as the unit does, so no instance's files can meet the plain daemon's
// (`autopilotd.sock`, `logs/autopilotd.log`) or another instance's.

/**
 * Letters, digits, `_`, `.` and `-`, starting with a letter or digit: a file name on every
 * filesystem, and the same text in systemd's `%i` (these characters are never escaped in unit
 * names). At most 64 characters, so the default socket path stays within sun_path.
 */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const INSTANCE_FLAG = '--instance';

/** Why `name` is not an instance name, or null when it is one. */
export function instanceNameProblem(name: string): string | null {
  if (INSTANCE_NAME.test(name)) return null;
  return `instance name ${JSON.stringify(name)} is not valid: expected 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`;
}

/** The default config file of instance `name` (with `~`, as DEFAULT_CONFIG_PATH). */
export function instanceConfigPath(name: string): string {
  return `~/.autopilot/${name}.toml`;
}

/** The defaults that differ per instance; every other default is shared. */
export function instancePathDefaults(name: string): { socket_path: string; pid_file: string; 'logs.dir': string } {
  return {
    socket_path: `~/.autopilot/autopilotd@${name}.sock`,
    pid_file: `~/.autopilot/autopilotd@${name}.pid`,
    'logs.dir': `~/.autopilot/logs/autopilotd@${name}`,
  };
}

