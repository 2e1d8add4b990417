// supervisord beside autopilotd in the benchmarks. Not a dependency: on first use Debian's
// `supervisor` package is installed. Its own system service is never used: the bench runs its own
// supervisord in the foreground (nodaemon) with a temp config, and stops it by PID.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, signal, stopByPid, waitFor } from './processes.mjs';

export const SUPERVISORD = '/usr/bin/supervisord';

/** The package's service writes its PID here (/etc/supervisor/supervisord.conf). */
const SERVICE_PID_FILE = '/var/run/supervisord.pid';

function servicePid() {
  try {
    const pid = Number(readFileSync(SERVICE_PID_FILE, 'utf8').trim());
    return Number.isInteger(pid) && alive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('supervisord') ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Installs the package when supervisord is missing. Debian starts the package's service on install
 * unless policy-rc.d forbids it: a service PID that was not there before and is after is that
 * service, and is stopped by that PID.
 */
export async function ensureSupervisord() {
  if (existsSync(SUPERVISORD)) return;
  console.error('installing Debian package supervisor (first use only)...');
  const before = servicePid();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'supervisor'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'supervisor'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  }
  const service = servicePid();
  if (service !== null && service !== before) {
    console.error(`stopping the supervisor package's own service (pid ${service}), started by the install`);
    await stopByPid(service, 'supervisord service');
  }
  if (!existsSync(SUPERVISORD)) throw new Error(`${SUPERVISORD} still missing after installing supervisor`);
}

/**
 * Runs supervisord in `dir` with one program, `[program:bench]` with `programLines` (INI lines,
 * `command=` among them). Resolves once the program has a live child; returns its pid and a stop.
 */
export async function startSupervisord(dir, programLines, env) {
  await ensureSupervisord();
  const config = join(dir, 'supervisord.conf');
  writeFileSync(config, [
    '[supervisord]',
    'nodaemon=true',
    `logfile=${join(dir, 'supervisord.log')}`,
    `pidfile=${join(dir, 'supervisord.pid')}`,
    `childlogdir=${dir}`,
    'loglevel=warn',
    '[program:bench]',
    'stdout_logfile=NONE',
    'stderr_logfile=NONE',
    ...programLines,
    '',
  ].join('\n'));
  const out = openSync(join(dir, 'supervisord.out'), 'a');
  const child = spawn(SUPERVISORD, ['-n', '-c', config], { detached: true, stdio: ['ignore', out, out], env });
  closeSync(out);
  const pid = child.pid;
  child.unref();
  const stop = async () => {
    // SIGTERM: supervisord stops its program (SIGTERM to it) and exits.
    await stopByPid(pid, 'supervisord', 15_000);
    signal(-pid, 'SIGKILL'); // anything left in its process group
  };
  try {
    await waitFor('supervisord to start its program', () => alive(pid) && hasChild(pid), 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid, stop };
}

function hasChild(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() !== '';
  } catch {
    return false;
  }
}
