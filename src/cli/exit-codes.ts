// CLI exit codes, documented in README "Exit codes" and docs/supervision.md.
export const EXIT = {
  ok: 0,
  /** The command failed (daemon refused, start failed, timeout). */
  failure: 1,
  /** No daemon runs (as `systemctl status` and LSB init scripts use 3). */
  notRunning: 3,
  /** `status`: the daemon runs, but its worker is `failed` (so that scripts and `watch` see it). */
  workerFailed: 4,
  /** Bad command line (sysexits EX_USAGE). */
  usage: 64,
  /** Bad configuration (sysexits EX_CONFIG); nothing was started. */
  config: 78,
} as const;

/** A mistake on the command line: printed with a pointer to the help of `command` (null: the main help), exit 64. */
export class UsageError extends Error {
  readonly exitCode = EXIT.usage;
  constructor(message: string, readonly command: string | null = null) {
    super(message);
  }
}

/** A failure that has already been explained to the user; carries its exit code. */
export class CliFailure extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}
