// 20 × SIGKILL of the daemon at a random moment, then `start`: never two workers (at no sample do
// processes of two instances live at once), and the orphaned tree, helpers included, is gone by
// the time the new worker runs. Then 10 rounds of 10 concurrent `start`s: exactly one daemon each.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { markedPids } from '../../helpers/sandbox.js';
import { Verdict, WORKERS, type CaseContext, type ReliabilityCase } from '../case.js';
import { sleep } from '../measure.js';

function instanceOf(pid: number): string | null {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    return env.find((e) => e.startsWith('AUTOPILOTD_INSTANCE='))?.slice('AUTOPILOTD_INSTANCE='.length) ?? null;
  } catch {
    return null;
  }
}

export const daemonKills: ReliabilityCase = {
  name: 'daemon-kills',
  async run(ctx: CaseContext) {
    const v = new Verdict();
    const box = ctx.sandbox({
      body: `[worker]\ncommand = ["sh", ${JSON.stringify(join(WORKERS, 'helpers-then-sleep.sh'))}]\nstop_timeout_ms = 2000\n[restart]\ninitial_backoff_ms = 10\n`,
    });
    // Sampler: how many instances have live processes at once.
    let maxInstances = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ids = new Set<string>();
        for (const p of box.processes()) {
          const id = instanceOf(p.pid);
          if (id !== null) ids.add(id);
        }
        maxInstances = Math.max(maxInstances, ids.size);
        await sleep(25);
      }
    })();
    const kills = ctx.n(20, 3);
    let orphansLeft = 0;
    let orphanedPids = 0;
    let previous: string | null = null;
    for (let i = 0; i <= kills; i++) {
      await box.start();
      const record = box.instanceRecord();
      if (previous !== null) {
        const left = markedPids(previous);
        if (left.length > 0) {
          orphansLeft += left.length;
          v.failures.push(`round ${i}: orphans of ${previous} alive after the new start: ${left.join(',')}`);
        }
      }
      if (i === kills) break;
      await sleep(Math.random() * 1500);
      previous = record?.instance_id ?? null;
      orphanedPids += previous === null ? 0 : markedPids(previous).length;
      process.kill(record!.pid, 'SIGKILL');
    }
    const stopped = await box.cli(['stop'], { timeoutMs: 60_000 });
    sampling = false;
    await sampler;
    v.fig('kills', kills);
    v.fig('orphaned_pids', orphanedPids);
    v.fig('orphans_left', orphansLeft);
    v.fig('max_instances_alive', maxInstances);
    v.require(maxInstances <= 1, `processes of ${maxInstances} instances were alive at once (two workers)`);
    v.require(stopped.code === 0, `stop exited ${stopped.code}`);

    // Concurrent starts.
    const rounds = ctx.n(10, 2);
    const winners: number[] = [];
    const daemonsSeen: number[] = [];
    let transient = 0;
    for (let r = 0; r < rounds; r++) {
      const results = await Promise.all(Array.from({ length: 10 }, () => box.cli(['start'], { timeoutMs: 60_000 })));
      box.remember();
      winners.push(results.filter((x) => x.code === 0).length);
      // A refused daemon may still be on its way out when its CLI has returned: count once settled.
      transient = Math.max(transient, box.daemons().length);
      const settle = Date.now() + 5000;
      while (box.daemons().length > 1 && Date.now() < settle) await sleep(50);
      daemonsSeen.push(box.daemons().length);
      const s = await box.cli(['stop'], { timeoutMs: 60_000 });
      if (s.code !== 0) v.failures.push(`round ${r}: stop exited ${s.code}`);
    }
    v.fig('concurrent_start_winners', winners.join(','));
    v.fig('daemons_per_round', daemonsSeen.join(','));
    v.fig('daemon_processes_max_right_after', transient);
    v.require(winners.every((w) => w === 1), `successful starts per round of 10: ${winners.join(',')}`);
    v.require(daemonsSeen.every((d) => d === 1), `daemons running per round: ${daemonsSeen.join(',')}`);
    const left = box.processes();
    v.require(left.length === 0, `left alive: ${left.map((p) => `${p.pid}:${p.argv.join(' ')}`).join('; ')}`);
    return v.result();
  },
};
