// Help texts. One per command; `autopilotd help <cmd>` and `autopilotd <cmd> --help` print it.

import { DURATION_SYNTAX } from './duration.js';

export const MAIN_HELP = `autopilotd: keeps an autonomous coding worker alive and the machine healthy

Usage: autopilotd <command> [options]

Commands:
  start [--foreground]    start the daemon (in the background unless --foreground)
  stop [--timeout DURATION]
                          shut the daemon down, stopping the worker's whole process tree
  status [--json] [--watch]
                          show the daemon and worker state (exit 3 when no daemon runs, 4 when
                          the worker is failed)
  restart-worker          gracefully restart the worker (resets the backoff); short: restart
  stop-worker             stop the worker's tree; the daemon keeps running
  start-worker            start the worker again after stop-worker
  reload                  re-read the configuration (the old one stays if the new is invalid)
  logs [-n N] [-f] ...    show (and follow) the daemon and worker log
  events [-f] [--json]    the daemon's last 100 events; -f prints new ones as they happen
  metrics                 the daemon's figures in Prometheus text format
  config check|show       validate the configuration / show it with where each value came from
  install-service [--instance NAME] [--enable] [--now] [--print]
                          write the systemd user unit of this installation and reload the manager
  uninstall-service [--instance NAME]
                          stop, disable and remove it
  help [COMMAND]          this help, or the help of COMMAND

Options for every command, before or after it:
  --config PATH           configuration file (default ~/.autopilot/daemon.toml, or $AUTOPILOTD_CONFIG)
  --instance NAME         one of several daemons: reads ~/.autopilot/NAME.toml, with its own socket,
                          PID file and logs (~/.autopilot/autopilotd@NAME.*); the unit autopilotd@NAME
  -h, --help              help for the command
  -V, --version           print the version

DURATION: ${DURATION_SYNTAX}.

Exit codes: 0 ok, 1 failure, 3 not running, 4 the worker is failed (status), 64 bad usage,
78 bad configuration.
`;

export const COMMAND_HELP: Record<string, string> = {
  start: `Usage: autopilotd start [--foreground] [--config P] [--project NAME] [--workdir DIR] [-- <worker argv...>]

Starts the daemon. Without --foreground it detaches, logs to the log directory, and returns once the
daemon listens and the worker was spawned, printing the daemon PID. A worker argv after -- replaces
worker.command.
`,
  stop: `Usage: autopilotd stop [--timeout DURATION] [--config P]

Asks the daemon to shut down (worker tree stopped: SIGTERM, grace, SIGKILL) and waits until it exited.
On a terminal it prints each step as the daemon takes it. A second stop, or Ctrl-C twice here,
kills the worker tree at once; a stop that times out leaves the daemon stopping.
--timeout DURATION  how long to wait; default worker.stop_timeout_ms plus 15 s.
DURATION: ${DURATION_SYNTAX}.
Exit 0 also when no daemon was running.
`,
  status: `Usage: autopilotd status [--json] [--watch [--interval DURATION]] [--config P]

Shows daemon and worker state, where it logs, the working directory, the restart policy and the
memory limits in force, restarts by cause, the last exit and spawn error, memory, and the worker
tree (pid, RSS, command; at most 20 lines).
--json prints the raw status data with "running": true; with no daemon, an object
{"running": false, "reason", "config_path", "socket_path", "pid_file"}.
-w, --watch          show it again every interval until Ctrl-C (exit 0): redrawn in place on a
                     terminal, successive blocks otherwise (one JSON object a line with --json);
                     while no daemon runs it says so and keeps looking
--interval DURATION  how often with --watch; default 1s, at least 100ms.
DURATION: ${DURATION_SYNTAX}.
Exit 0 when running, 4 when the worker is failed (still retried), 3 when no daemon runs.
`,
  'restart-worker': 'Usage: autopilotd restart-worker [--config P]\n       autopilotd restart [--config P]\n\nStops the worker tree gracefully and starts it at once; resets the backoff. On a terminal it\nprints each step of the tree stop as the daemon takes it.\n',
  'stop-worker': 'Usage: autopilotd stop-worker [--config P]\n\nStops the worker tree; the daemon keeps running with the worker stopped.\n',
  'start-worker': 'Usage: autopilotd start-worker [--config P]\n\nStarts the worker (after stop-worker, or now instead of after the backoff delay).\n',
  reload: 'Usage: autopilotd reload [--config P]\n\nRe-reads the configuration. Memory and restart settings apply at once, worker settings at the\nnext start. An invalid file is rejected and the old configuration stays.\n',
  logs: `Usage: autopilotd logs [-n N] [-f] [--stream stdout|stderr] [--since WHEN] [--json]
                       [--config P] [--instance NAME]

Prints the last N lines (default 50) of the daemon and worker log; -f follows it.
  --stream S   only the worker's stdout or stderr lines
  --since WHEN only lines since WHEN: a DURATION ago (10m, 2h) or an ISO 8601 time
               (2026-01-31T12:00:00Z); every such line unless -n is given
  --json       one JSON object per line: time, level, source, stream, generation, text
Under systemd the log is in the journal instead: journalctl --user -u autopilotd
(journalctl --user -u autopilotd@NAME for an instance).
`,
  'install-service': `Usage: autopilotd install-service [--instance NAME] [--enable] [--now] [--print] [--config P]

Writes the systemd user unit ~/.config/systemd/user/autopilotd.service ($XDG_CONFIG_HOME if set),
or the template autopilotd@.service with --instance, with this installation's node and script,
then runs systemctl --user daemon-reload and says what to run next.
  --enable    also systemctl --user enable the unit (autopilotd@NAME with --instance)
  --now       also start it now (a running one is left alone; restart it to use a new unit)
  --print     write the unit to stdout and change nothing
  --config P  the plain unit runs the daemon with this file (not with --instance: each instance
              reads ~/.autopilot/NAME.toml)
Says when lingering is off (loginctl enable-linger): without it the service stops at logout.
`,
  'uninstall-service': `Usage: autopilotd uninstall-service [--instance NAME]

Stops and disables the unit (autopilotd@NAME with --instance), removes its file (the template
stays while other instances use it) and runs systemctl --user daemon-reload.
`,
  events: `Usage: autopilotd events [-f] [--json] [--config P]

Prints the daemon's last 100 events (what its log shows, without the worker's output), as the log
writes them; with --json one JSON object per line: {"seq", "at", "level", "kind", "text"}.
-f, --follow  stay connected and print each new event as it happens, until Ctrl-C (exit 0).
A gap in "seq" means events this client missed. A client that does not read is dropped by the
daemon (exit 1, saying so). Exit 3 when no daemon runs.
`,
  metrics: `Usage: autopilotd metrics [--config P]

Prints the daemon's figures in Prometheus text exposition format 0.0.4: worker state, restarts by
cause, memory, notifications, control connections, the daemon's own RSS and CPU. The same text is
served over HTTP at GET /metrics when [metrics].listen is set. Exit 3 when no daemon runs.
`,
  config: `Usage: autopilotd config check [--config P]
       autopilotd config show [--config P]

check: validates the configuration, and checks that the socket's, the PID file's and the log
       directory are private (creating nothing); exit 0 when valid, 78 (with every problem
       listed) when not.
show:  prints the effective configuration and where each value came from.
`,
};
