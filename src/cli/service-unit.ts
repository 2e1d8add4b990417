// The systemd user units `install-service` writes (#16), as text: `autopilotd.service` runs the
// plain daemon, the template `autopilotd@.service` one daemon per instance (`--instance %i`). The
// copies in the repository's systemd/ are this text for a global npm install with /usr/bin/node
// (scripts/write-units.mjs; a test keeps them equal).

import { DAEMON_NODE_FLAGS } from './daemon-node-flags.js';

/** Which processes may send sd_notify messages: the daemon itself (native addon) or any of its unit. */
export type NotifyAccess = 'main' | 'all';

export interface UnitInput {
  /** Absolute path of node. */
  nodePath: string;
  /** Absolute path of the CLI script (dist/bin/autopilotd.cjs). */
  scriptPath: string;
  /** True for the template autopilotd@.service. */
  template: boolean;
  /** An explicit config file for the plain unit (`install-service --config P`); null: the default. */
  configPath: string | null;
  /**
   * `main` when the daemon sends its notifications itself; `all` when it falls back to the
   * systemd-notify binary, a child process whose messages systemd drops under `main`.
   */
  notifyAccess: NotifyAccess;
  /** The worker's stop grace (worker.stop_timeout_ms): the unit's stop and start timeouts exceed it. */
  stopTimeoutMs: number;
  /** The home directory: a path inside it is written as `%h/...`, so the unit names no home. */
  homeDir: string;
}

/**
 * The repository's copies (systemd/, scripts/write-units.mjs): a global npm install under /usr
 * run by the distribution's node, the defaults' stop grace, the native addon's NotifyAccess.
 */
export const REPO_UNIT_INPUT = {
  nodePath: '/usr/bin/node',
  scriptPath: '/usr/lib/node_modules/autopilotd/dist/bin/autopilotd.cjs',
  configPath: null,
  notifyAccess: 'main',
  stopTimeoutMs: 10_000,
  homeDir: '/nonexistent',
} as const satisfies Partial<UnitInput>;

/** A repository copy: the unit for REPO_UNIT_INPUT, saying what it assumes. */
export function repoUnitText(template: boolean): string {
  return `# This copy assumes /usr/bin/node and \`npm install -g\` under /usr; \`autopilotd install-service\`
# writes the paths of the installation it runs from instead.
${unitText({ ...REPO_UNIT_INPUT, template })}`;
}

/** The unit file's name: `autopilotd.service` or the template's `autopilotd@.service`. */
export function unitFileName(template: boolean): string {
  return template ? 'autopilotd@.service' : 'autopilotd.service';
}

/** The unit that runs a daemon: `autopilotd` or `autopilotd@NAME` (for systemctl and journalctl). */
export function unitNameOf(instance: string | null): string {
  return instance === null ? 'autopilotd' : `autopilotd@${instance}`;
}

/** Seconds that systemd waits for a stop: the daemon's own TERM, grace, KILL of the tree, plus a margin (as `autopilotd stop`). */
export function timeoutStopSec(stopTimeoutMs: number): number {
  return Math.ceil((stopTimeoutMs + 15_000) / 1000);
}

/** Seconds that systemd waits for READY: a start may first stop an orphaned tree (as `autopilotd start` waits). */
export function timeoutStartSec(stopTimeoutMs: number): number {
  return Math.ceil((stopTimeoutMs + 30_000) / 1000);
}

export function unitText(u: UnitInput): string {
  const args = [
    execArg(inHome(u.nodePath, u.homeDir)),
    ...DAEMON_NODE_FLAGS.map(execArg),
    execArg(inHome(u.scriptPath, u.homeDir)),
    'start', '--foreground',
    ...(u.template ? ['--instance', '%i'] : []),
    ...(u.configPath !== null ? ['--config', execArg(inHome(u.configPath, u.homeDir))] : []),
  ];
  const config = u.template ? '~/.autopilot/%i.toml' : u.configPath === null ? '~/.autopilot/daemon.toml' : 'the file after --config';
  return `# autopilotd: keeps an autonomous coding worker alive and the machine healthy (README, "systemd").
# Written by \`autopilotd install-service${u.template ? ' --instance NAME' : ''}\` with the node and script of an installation;
# run it again after either moves (another Node version, another install prefix).
# ${u.template ? `One daemon per instance: autopilotd@NAME reads ~/.autopilot/NAME.toml and has its own
# socket, PID file and log directory, all named autopilotd@NAME.` : 'The daemon reads its configuration from ' + config + '.'}
[Unit]
Description=${u.template ? 'autopilotd instance %i: supervisor of an autonomous coding worker' : 'autopilotd: supervisor of an autonomous coding worker'}

[Service]
Type=notify
# ${u.notifyAccess === 'main'
    ? 'READY, STATUS and WATCHDOG come from the daemon itself (its native addon).'
    : 'The native addon is not available: the daemon notifies through systemd-notify, a child process.'}
NotifyAccess=${u.notifyAccess}
ExecStart=${args.join(' ')}
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=10
# Before READY the daemon may stop the worker tree a killed daemon left behind.
TimeoutStartSec=${timeoutStartSec(u.stopTimeoutMs)}
# The daemon stops the worker tree itself (SIGTERM, worker.stop_timeout_ms, SIGKILL); this is that
# grace plus a margin. Past it systemd kills whatever is left in the unit (KillMode=mixed).
TimeoutStopSec=${timeoutStopSec(u.stopTimeoutMs)}
WatchdogSec=30
KillMode=mixed
# A process the kernel's OOM killer ends is the daemon's to handle (it restarts the worker), not
# a reason for systemd to stop the whole service.
OOMPolicy=continue
# Delegate=yes hands the daemon this service's cgroup subtree: it moves itself into a "daemon"
# leaf and spawns each worker generation into a leaf of its own, so the kernel names the exact
# tree (cgroup.procs, populated) and kills all of it (cgroup.kill), a descendant that left its
# session and cleared its environment included ([cgroup] mode, README "systemd").
Delegate=yes
EnvironmentFile=-%h/.autopilot/env
${u.template ? 'EnvironmentFile=-%h/.autopilot/%i.env\n' : ''}StandardOutput=journal
StandardError=journal
SyslogIdentifier=${u.template ? 'autopilotd@%i' : 'autopilotd'}
# No MemoryMax=: the worker shares this cgroup, and Claude Code alone passes 512 MiB. At a cgroup
# limit the kernel would kill inside the tree before the daemon's memory guard, which picks its
# victim and restarts the worker cleanly, could act.
# Hardening that still lets an agent edit code, run builds and tests and use the network; README
# says why each stronger option is left out.
NoNewPrivileges=yes
LockPersonality=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes

[Install]
WantedBy=default.target
`;
}

/** `%h/rest` for a path inside the home directory. */
function inHome(path: string, homeDir: string): string {
  const home = homeDir.replace(/\/+$/, '');
  return home !== '' && path.startsWith(`${home}/`) ? `%h${path.slice(home.length)}` : path;
}

/**
 * One ExecStart argument. `%` (a specifier) and `$` (a variable) are doubled except in a leading
 * `%h`; an argument with a space, quote or backslash is double-quoted with C escapes, which systemd
 * reads back exactly. A newline or NUL cannot be written at all.
 */
export function execArg(arg: string): string {
  if (/[\n\r\0]/.test(arg)) throw new Error(`cannot write ${JSON.stringify(arg)} in a unit file`);
  const home = arg.startsWith('%h/') ? '%h' : '';
  const rest = arg.slice(home.length).replace(/%/g, '%%').replace(/\$/g, '$$$$');
  const text = home + rest;
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
