// Worker output abuse: a flood at 200 MB/s, a 500 MB line without a newline, binary, then a closed
// stdout. The worker must not be slowed (at least 150 of its 200 MB/s), the daemon's RSS stays
// under 100 MiB and its log disk within the rotation bound, `status` answers within 1 s
// throughout, and the daemon still supervises the worker once its stdout is closed.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../helpers/wait.js';
import { Verdict, WORKERS, type CaseContext, type ReliabilityCase } from '../case.js';
import { MIB, MaxSampler, StatusProber, dirBytes, mib, rssOf, sleep } from '../measure.js';

const LOG_FILE_BYTES = 4 * MIB;
const LOG_FILES = 3;

export const outputAbuse: ReliabilityCase = {
  name: 'output-abuse',
  async run(ctx: CaseContext) {
    const v = new Verdict();
    const seconds = Math.max(3, Math.round(20 * ctx.scale));
    const longMB = ctx.n(500, 50);
    const binaryMB = ctx.n(200, 20);
    const box = ctx.sandbox({
      body: [
        '[worker]',
        `command = ["node", ${JSON.stringify(join(WORKERS, 'output-abuse.mjs'))}, "RESULT", "${seconds}", "200", "${longMB}", "${binaryMB}"]`,
        'stop_timeout_ms = 2000',
      ].join('\n'),
      logs: `max_file_bytes = ${LOG_FILE_BYTES}\nmax_files = ${LOG_FILES}`,
    });
    const resultFile = join(box.dir, 'result.jsonl');
    // The sandbox writes the config; put the result path in place of the placeholder.
    box.writeConfig(
      ['[worker]', `command = ["node", ${JSON.stringify(join(WORKERS, 'output-abuse.mjs'))}, ${JSON.stringify(resultFile)}, "${seconds}", "200", "${longMB}", "${binaryMB}"]`, 'stop_timeout_ms = 2000'].join('\n'),
      `max_file_bytes = ${LOG_FILE_BYTES}\nmax_files = ${LOG_FILES}`,
    );
    const { pid } = await box.start();
    const prober = new StatusProber(box.socketPath, 200, 5000);
    const rssMax = new MaxSampler(() => rssOf(pid));
    const diskMax = new MaxSampler(() => dirBytes(box.logDir), 200);
    const results = (): Record<string, number | string>[] =>
      existsSync(resultFile) ? readFileSync(resultFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>) : [];
    let done = true;
    try {
      await waitFor(() => `the worker to finish its phases: ${JSON.stringify(results())}`, () => results().some((r) => r['phase'] === 'closed'), 300_000, 200);
    } catch {
      done = false;
    }
    ctx.log(`phases: ${JSON.stringify(results())}`);
    await sleep(2000); // the closed-stdout worker keeps running; status must still see it
    const status = await prober.stop();
    const peak = rssMax.stop();
    const disk = diskMax.stop();
    const after = await box.status().catch((err: Error) => err);
    const flood = results().find((r) => r['phase'] === 'flood');
    const long = results().find((r) => r['phase'] === 'long');
    const binary = results().find((r) => r['phase'] === 'binary');
    const mbs = flood === undefined ? 0 : Number(flood['mb_s']);
    const bound = LOG_FILE_BYTES * (LOG_FILES + 1) + MIB;

    v.fig('flood', flood === undefined ? 'none' : `${mbs.toFixed(0)}MB/s(target 200)`);
    v.fig('long_line', long === undefined ? 'none' : `${longMB}MB in ${Number(long['seconds']).toFixed(1)}s`);
    v.fig('binary', binary === undefined ? 'none' : `${binaryMB}MB in ${Number(binary['seconds']).toFixed(1)}s`);
    v.fig('daemon_rss_peak', mib(peak));
    v.fig('log_disk_max', `${mib(disk)}(bound ${mib(bound)})`);
    v.fig('status', `n=${status.count} failed=${status.failed} p50=${status.p50.toFixed(0)}ms max=${status.max.toFixed(0)}ms`);
    const state = after instanceof Error ? `error(${after.message})` : `${after.worker.state},gen ${after.worker.generation}`;
    v.fig('after_close', state);

    v.require(done, 'the worker did not get through its phases within 300 s');
    v.require(mbs >= 150, `the worker wrote only ${mbs.toFixed(0)} MB/s (required 150 of 200)`);
    v.require(peak <= 100 * MIB, `daemon RSS peaked at ${mib(peak)} (allowed 100 MiB)`);
    v.require(disk <= bound, `log dir reached ${mib(disk)} (bound ${mib(bound)})`);
    v.require(status.failed === 0, `status failed ${status.failed} times (first: ${prober.failures[0]})`);
    v.require(status.max <= 1000, `status took up to ${status.max.toFixed(0)} ms (allowed 1000)`);
    v.require(!(after instanceof Error) && after.worker.state === 'running' && after.worker.generation === 1, `after the worker closed stdout: ${state}`);
    return v.result();
  },
};
