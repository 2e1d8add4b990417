// `autopilotd install-service` and `uninstall-service` (#16): the systemd user unit of this
// installation, written where the user's manager reads it, and what to run next.

import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { formatProblem } from '../config/errors.js';
import { loadNative } from '../os/native.js';
import { lingeringOf, systemctlUser, toolFailure, type ToolResult } from '../os/systemctl.js';
import { loadForCommand, type ParsedCommand } from './args.js';
import { CliFailure, EXIT, UsageError } from './exit-codes.js';
import { unitFileName, unitNameOf, unitText, type NotifyAccess } from './service-unit.js';
import { workerProblems } from './worker-check.js';
import { writeOut } from './output-writer.js';

/**
 * How this installation's daemon will notify systemd. The native addon sends from the daemon's
 * own pid (NotifyAccess=main); without it the daemon falls back to the systemd-notify binary, a
 * child process, which needs NotifyAccess=all (src/os/sd-notify.ts). Said once, on stderr, so that
 * --print's stdout stays the unit.
 */
function notifyAccessOfThisInstall(): NotifyAccess {
  const native = loadNative();
  if (native.loaded) return 'main';
  process.stderr.write(`autopilotd: the native helper is not available (${native.reason}): the unit says NotifyAccess=all for the systemd-notify fallback; run install-service again once it is built\n`);
  return 'all';
}

/** `$XDG_CONFIG_HOME/systemd/user`, or `~/.config/systemd/user` (a relative XDG_CONFIG_HOME is ignored, as the XDG spec says). */
export function userUnitDir(env: Record<string, string | undefined>, homeDir: string): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homeDir, '.config'), 'systemd', 'user');
}

interface ServiceTarget {
  instance: string | null;
  /** The unit to start, enable or stop: autopilotd or autopilotd@NAME. */
  unit: string;
  /** The file: autopilotd.service or the template autopilotd@.service. */
  file: string;
}

function targetOf(p: ParsedCommand): ServiceTarget {
  const instance = typeof p.values.instance === 'string' ? p.values.instance : null;
  return { instance, unit: unitNameOf(instance), file: join(userUnitDir(process.env, homedir()), unitFileName(instance !== null)) };
}

export async function installServiceCommand(p: ParsedCommand): Promise<number> {
  const target = targetOf(p);
  if (target.instance !== null && typeof p.values.config === 'string') {
    throw new UsageError('install-service: --config and --instance do not go together: the template is shared by every instance, and each reads ~/.autopilot/NAME.toml');
  }
  // The instance's file must exist (exit 78 otherwise): the unit would only fail to start.
  const loaded = await loadForCommand(p);
  const text = unitText({
    nodePath: process.execPath,
    scriptPath: realpathSync(process.argv[1]!),
    template: target.instance !== null,
    configPath: typeof p.values.config === 'string' ? loaded.path : null,
    notifyAccess: notifyAccessOfThisInstall(),
    stopTimeoutMs: loaded.config.worker.stop_timeout_ms,
    homeDir: homedir(),
  });
  if (p.values.print === true) {
    writeOut(text);
    return EXIT.ok;
  }
  const previous = existsSync(target.file) ? readFileSync(target.file, 'utf8') : null;
  if (previous !== text) writeUnitFile(target.file, text);
  say(`${previous === null ? 'wrote' : previous === text ? 'unchanged' : 'updated'} ${target.file}`);
  mustSucceed(systemctlUser(['daemon-reload']), `the unit file is written, but the user manager did not reload it`);
  if (p.values.enable === true) {
    mustSucceed(systemctlUser(['enable', target.unit]), 'enabling failed');
    say(`enabled ${target.unit}: it starts with your user manager`);
  }
  const active = systemctlUser(['is-active', target.unit]).stdout.trim();
  if (p.values.now === true) {
    if (active === 'active' || active === 'reloading') {
      say(previous !== null && previous !== text ? `${target.unit} was already running with the old unit: systemctl --user restart ${target.unit}` : `${target.unit} is already running`);
    } else {
      mustSucceed(systemctlUser(['start', target.unit]), `starting ${target.unit} failed (journalctl --user -u ${target.unit})`);
      say(`started ${target.unit}`);
    }
  }
  warnAboutWorkerPath(loaded, target);
  warnAboutLingering();
  say(nextSteps(target, p));
  return EXIT.ok;
}

export async function uninstallServiceCommand(p: ParsedCommand): Promise<number> {
  const target = targetOf(p);
  if (!existsSync(target.file)) {
    say(`no unit file at ${target.file}: nothing to uninstall`);
    return EXIT.ok;
  }
  // Stop before the file goes: a stop reads the unit's KillMode and TimeoutStopSec.
  mustSucceed(systemctlUser(['disable', '--now', target.unit]), `stopping and disabling ${target.unit} failed`);
  say(`stopped and disabled ${target.unit}`);
  const others = target.instance === null ? [] : otherInstances(target);
  if (others.length > 0) {
    say(`kept ${target.file}: ${others.join(', ')} still use${others.length === 1 ? 's' : ''} it`);
  } else {
    rmSync(target.file);
    say(`removed ${target.file}`);
  }
  mustSucceed(systemctlUser(['daemon-reload']), 'the user manager did not reload its units');
  // A unit that failed before it was stopped stays listed as failed until reset.
  systemctlUser(['reset-failed', `${target.unit}.service`]);
  return EXIT.ok;
}

/** Other instances that are loaded (running, failed) or enabled, which need the template. */
function otherInstances(target: ServiceTarget): string[] {
  const mine = `${target.unit}.service`;
  const names = new Set<string>();
  const listed = systemctlUser(['list-units', '--all', '--plain', '--no-legend', 'autopilotd@*.service']);
  for (const line of listed.stdout.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const load = line.trim().split(/\s+/)[1] ?? '';
    if (name.startsWith('autopilotd@') && load !== 'not-found') names.add(name);
  }
  // Enabled but not loaded: the symlinks `enable` made in the wants directories.
  const dir = userUnitDir(process.env, homedir());
  for (const entry of safeReaddir(dir)) {
    if (!entry.endsWith('.wants')) continue;
    for (const link of safeReaddir(join(dir, entry))) if (link.startsWith('autopilotd@') && link.endsWith('.service')) names.add(link);
  }
  names.delete(mine);
  return [...names].sort().map((name) => name.replace(/\.service$/, ''));
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return []; // no such directory: nothing enabled there
  }
}

/** Written beside itself and renamed over, so the manager never reads half a unit. */
function writeUnitFile(file: string, text: string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, text, { mode: 0o644 });
  renameSync(temp, file);
}

function mustSucceed(r: ToolResult, what: string): void {
  if (r.status === 0) return;
  throw new CliFailure(`${what}: ${r.command}: ${toolFailure(r)}`, EXIT.failure);
}

/**
 * The service gets the user manager's PATH (plus ~/.autopilot/env), not the shell's: `cargo` in
 * ~/.cargo/bin is found in a terminal and not by the unit. Said now rather than found in the
 * journal after the daemon refused to start (exit 78).
 */
function warnAboutWorkerPath(loaded: Awaited<ReturnType<typeof loadForCommand>>, target: ServiceTarget): void {
  const envFiles = [join(homedir(), '.autopilot', 'env'), ...(target.instance === null ? [] : [join(homedir(), '.autopilot', `${target.instance}.env`)])];
  if (envFiles.some((f) => existsSync(f) && /^\s*PATH=/m.test(readFileSync(f, 'utf8')))) return; // set for the service: unknowable here
  const shown = systemctlUser(['show-environment']);
  const managerPath = /^PATH=(.*)$/m.exec(shown.stdout)?.[1];
  if (shown.status !== 0 || managerPath === undefined) return;
  for (const problem of workerProblems(loaded, { PATH: managerPath }).errors) {
    say(`warning: under the user manager (PATH=${managerPath}): ${formatProblem(problem)}; set PATH in ${envFiles.at(-1)}`);
  }
}

function warnAboutLingering(): void {
  const user = userInfo().username;
  const lingering = lingeringOf(user);
  if (lingering.known && lingering.enabled) return;
  if (lingering.known) {
    say(`lingering is off for ${user}: the service starts only at login and stops at logout; to keep it running: loginctl enable-linger ${user}`);
  } else {
    say(`cannot tell whether lingering is on for ${user} (${lingering.why}); where logind runs, loginctl enable-linger ${user} keeps the service running without a login`);
  }
}

function nextSteps(target: ServiceTarget, p: ParsedCommand): string {
  const steps: string[] = [];
  if (p.values.enable !== true && p.values.now !== true) steps.push(`systemctl --user enable --now ${target.unit}   (start it now and with every start of your user manager)`);
  else if (p.values.enable !== true) steps.push(`systemctl --user enable ${target.unit}   (start it with every start of your user manager)`);
  else if (p.values.now !== true) steps.push(`systemctl --user start ${target.unit}`);
  const flag = target.instance === null ? '' : ` --instance ${target.instance}`;
  steps.push(`systemctl --user status ${target.unit}`, `journalctl --user -u ${target.unit} -f`, `autopilotd status${flag}`);
  return `next:\n${steps.map((s) => `  ${s}`).join('\n')}`;
}

function say(line: string): void {
  writeOut(`${line}\n`);
}
