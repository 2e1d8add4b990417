// Processes the daemon must never signal: one named by a stale PID file (and instance record)
// that is alive but unrelated, and a same-user memory hog outside the worker tree while memory is
// forced low (min_available_bytes above what the machine has) and the hog is far over
// node_kill_threshold_bytes. Through start, several low-memory polls and stop, neither gets a
// signal.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, isAlive } from '../../helpers/daemon.js';
import { GIB, memAvailableBytes, mibText, startHog } from '../../helpers/memory.js';
import { waitFor } from '../../helpers/wait.js';
import { Verdict, WORKERS, type CaseContext, type ReliabilityCase } from '../case.js';
import { pollLateness, sleep } from '../measure.js';

export const bystanders: ReliabilityCase = {
  name: 'bystanders',
  async run(ctx: CaseContext) {
    const v = new Verdict();
    const low = memAvailableBytes() + 2 * GIB;
    const box = ctx.sandbox({
      body: [
        'log_level = "debug"',
        '[worker]',
        'command = ["sleep", "1000"]',
        'stop_timeout_ms = 2000',
        '[memory]',
        `min_available_bytes = "${mibText(low)}"`,
        'critical_threshold_bytes = "64MiB"',
        'node_kill_threshold_bytes = "50MiB"',
        'poll_interval_ms = 500',
        'cooldown_ms = 500',
      ].join('\n'),
    });
    const signals = join(box.dir, 'bystander.signals');
    const bystander = spawn(process.execPath, [join(WORKERS, 'bystander.mjs'), signals], { detached: true, stdio: 'ignore', env: cleanEnv(), cwd: '/' });
    const bpid = bystander.pid!;
    ctx.defer(() => {
      if (isAlive(bpid)) process.kill(bpid, 'SIGKILL');
    });
    await waitFor('the bystander to be ready', () => existsSync(signals) && readFileSync(signals, 'utf8').includes('ready'));
    const hog = startHog(['--mib', '200', '--ignore-term']);
    ctx.defer(() => hog.kill());
    await hog.ready(30_000);

    // The stale PID file and instance record name the live bystander.
    writeFileSync(box.pidFile, `${bpid}\n`, { mode: 0o600 });
    writeFileSync(`${box.pidFile}.instance`, JSON.stringify({ pid: bpid, start_ticks: 1, instance_id: 'staleinstance', socket_path: box.socketPath, config_path: box.configPath }), { mode: 0o600 });

    const since = Date.now();
    const started = await box.cli(['start']);
    box.remember();
    v.fig('start', started.code ?? 'signal');
    let lowSeen = false;
    if (started.code === 0) {
      lowSeen = await box.waitForLog(/memory low/, 15_000).then(() => true, () => false);
      await sleep(ctx.scale >= 1 ? 10_000 : 3000);
    }
    const polls = pollLateness(box.log(), since).samples;
    const stopped = await box.cli(['stop'], { timeoutMs: 60_000 });
    await sleep(500);
    const got = readFileSync(signals, 'utf8').split('\n').filter((l) => l.startsWith('signal '));
    const hogOut = hog.output();
    v.fig('low_polls', polls);
    v.fig('bystander', isAlive(bpid) ? `alive,signals=${got.length}` : 'dead');
    v.fig('hog', isAlive(hog.pid) ? `alive,sigterm=${hogOut.includes('ignored SIGTERM') ? 'yes' : 'no'}` : 'dead');
    v.require(started.code === 0, `start exited ${started.code}: ${started.stderr.trim()}`);
    v.require(lowSeen, 'the daemon never reported memory low');
    v.require(stopped.code === 0, `stop exited ${stopped.code}: ${stopped.stderr.trim()}`);
    v.require(isAlive(bpid) && got.length === 0, `the PID file's process was signalled: ${isAlive(bpid) ? got.join(', ') : 'killed'}`);
    v.require(isAlive(hog.pid) && !hogOut.includes('ignored SIGTERM'), `the hog outside the tree was signalled: ${isAlive(hog.pid) ? 'SIGTERM' : 'killed'}`);
    return v.result();
  },
};
