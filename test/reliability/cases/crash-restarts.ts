// 10 000 crash restarts at the smallest backoff (1 ms), each worker leaving a setsid'd and a
// double-forked helper behind: the daemon's RSS and fds must not grow, the log stays within its
// rotation bound, and no helper survives (neither during the run beyond the current worker's, nor
// after stop).

import { join } from 'node:path';
import { markedPids } from '../../helpers/sandbox.js';
import { WORKERS, Verdict, type CaseContext, type ReliabilityCase } from '../case.js';
import { MIB, dirBytes, fdsOf, mib, rssOf, sleep } from '../measure.js';

const LOG_FILE_BYTES = 64 * 1024;
const LOG_FILES = 2;

/**
 * 10 000 restarts must fit in 10 minutes (17/s): with the other cases' ~3 minutes the suite stays
 * within the issue's 15. Measured on a quiet 2-core VM: ~19/s (a cycle is Node's spawn, ~6 ms
 * here, the worker's own ~26 ms, and the tree stop's ~12 ms).
 */
const budgetMsAt = (scale: number): number => Math.max(60_000, 600_000 * scale);

export const crashRestarts: ReliabilityCase = {
  name: 'crash-restarts',
  timeoutMs: (scale) => budgetMsAt(scale) + 90_000,
  async run(ctx: CaseContext) {
    const v = new Verdict();
    const target = ctx.n(10_000, 50);
    const budgetMs = budgetMsAt(ctx.scale);
    const box = ctx.sandbox({
      body: [
        '[worker]',
        `command = ["sh", ${JSON.stringify(join(WORKERS, 'crash-helpers.sh'))}]`,
        'stop_timeout_ms = 2000',
        '[restart]',
        'initial_backoff_ms = 1',
        'max_backoff_ms = 1',
        'backoff_multiplier = 1.0',
      ].join('\n'),
      logs: `max_file_bytes = ${LOG_FILE_BYTES}\nmax_files = ${LOG_FILES}`,
    });
    const { pid } = await box.start();
    const instanceId = box.instanceRecord()?.instance_id ?? '';
    // Baseline once the loop is warm (a few restarts in).
    let crashes = 0;
    const crashCount = async (): Promise<number> => {
      try {
        return (await box.status()).restarts.crash;
      } catch {
        return crashes;
      }
    };
    while ((crashes = await crashCount()) < 20) await sleep(100);
    const rss0 = rssOf(pid);
    const fds0 = fdsOf(pid);
    const started = Date.now();
    let maxMarked = 0;
    let maxLogBytes = 0;
    while (crashes < target && Date.now() - started < budgetMs) {
      await sleep(500);
      crashes = await crashCount();
      maxMarked = Math.max(maxMarked, markedPids(instanceId).length);
      maxLogBytes = Math.max(maxLogBytes, dirBytes(box.logDir));
    }
    const tookMs = Date.now() - started;
    const rss1 = rssOf(pid);
    const fds1 = fdsOf(pid);
    const stop = await box.cli(['stop'], { timeoutMs: 60_000 });
    await sleep(200);
    const leftMarked = markedPids(instanceId);
    const leftTagged = box.processes();
    const logBound = LOG_FILE_BYTES * (LOG_FILES + 1) + 64 * 1024;

    v.fig('restarts', crashes);
    v.fig('target', target);
    v.fig('rate', `${(((crashes - 20) / tookMs) * 1000).toFixed(0)}/s`);
    v.fig('rss', `${mib(rss0)}->${mib(rss1)}`);
    v.fig('fds', `${fds0}->${fds1}`);
    v.fig('log_disk_max', `${(maxLogBytes / 1024).toFixed(0)}KiB(bound ${(logBound / 1024).toFixed(0)}KiB)`);
    v.fig('marked_alive_max', maxMarked);
    v.fig('helpers_left', leftMarked.length + leftTagged.length);

    v.require(crashes >= target, `only ${crashes} of ${target} restarts within ${budgetMs} ms`);
    v.require(rss0 !== null && rss1 !== null && rss1 - rss0 <= 10 * MIB, `daemon RSS grew ${mib(rss0)} -> ${mib(rss1)} (allowed +10 MiB)`);
    v.require(fds0 !== null && fds1 !== null && fds1 <= fds0 + 2, `daemon fds grew ${fds0} -> ${fds1}`);
    v.require(maxLogBytes <= logBound, `log dir reached ${maxLogBytes} bytes (bound ${logBound})`);
    // One worker tree at a time: the worker and its two helpers (plus sh/sleep of a helper in exec).
    v.require(maxMarked <= 6, `${maxMarked} marked processes alive at once: helpers pile up`);
    v.require(stop.code === 0, `stop exited ${stop.code}: ${stop.stderr.trim()}`);
    v.require(leftMarked.length === 0 && leftTagged.length === 0, `left alive after stop: ${JSON.stringify([...leftMarked, ...leftTagged.map((p) => p.pid)])}`);
    return v.result();
  },
};
