// `npm run test:reliability`: the reliability cases of issue #15 item 11, in sequence, against real
// daemons. Prints `PASS|FAIL <case>: <figures>` per case and a final `N passed, N failed`; exits 1
// when a case failed. RELIABILITY_SCALE (default 1, the issue's counts) shrinks every count, e.g.
// RELIABILITY_SCALE=0.1 for a quick run; RELIABILITY_CASES=a,b runs only the cases named.
// Each case ends every process it started (by PID, instance marker and sandbox tag) and removes its
// temp dirs, pass or fail.

import { badConfigs } from './cases/bad-configs.js';
import { bystanders } from './cases/bystanders.js';
import { crashRestarts } from './cases/crash-restarts.js';
import { daemonKills } from './cases/daemon-kills.js';
import { outputAbuse } from './cases/output-abuse.js';
import { socketAbuse } from './cases/socket-abuse.js';
import type { CaseContext, ReliabilityCase } from './case.js';
import { Sandbox } from '../helpers/sandbox.js';

/**
 * A case that runs longer is failed (and its processes ended): the suite stays bounded. The crash
 * restarts case sets its own (its budget plus its stop); the others take 3 minutes together at scale 1.
 */
const CASE_TIMEOUT_MS = 4 * 60_000;

function withTimeout<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const ALL: ReliabilityCase[] = [crashRestarts, socketAbuse, outputAbuse, daemonKills, bystanders, badConfigs];

async function main(): Promise<number> {
  const scale = Number(process.env['RELIABILITY_SCALE'] ?? '1');
  if (!(scale > 0 && scale <= 1)) {
    console.error(`RELIABILITY_SCALE must be a number in (0, 1], got ${process.env['RELIABILITY_SCALE']}`);
    return 64;
  }
  const only = process.env['RELIABILITY_CASES']?.split(',').filter((s) => s !== '');
  const cases = only === undefined ? ALL : ALL.filter((c) => only.includes(c.name));
  const verbose = process.env['RELIABILITY_VERBOSE'] === '1';
  let deferred: (() => void | Promise<void>)[] = [];
  const ctx: CaseContext = {
    scale,
    n: (count, min = 1) => Math.max(min, Math.round(count * scale)),
    sandbox(opts) {
      const box = new Sandbox(opts);
      deferred.push(() => box.cleanup());
      return box;
    },
    log(message) {
      if (verbose) console.error(`  ${new Date().toISOString()} ${message}`);
    },
    defer(fn) {
      deferred.push(fn);
    },
  };
  // Interrupted: end what the current case started before exiting.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void (async () => {
        for (const fn of deferred.reverse()) await Promise.resolve().then(fn).catch(() => {});
        process.exit(130);
      })();
    });
  }
  console.log(`reliability: scale ${scale}, node ${process.version}, ${new Date().toISOString()}`);
  const suiteStart = Date.now();
  let passed = 0;
  let failed = 0;
  for (const c of cases) {
    const started = Date.now();
    let line: string;
    ctx.log(`case ${c.name}`);
    try {
      const r = await withTimeout(c.run(ctx), c.timeoutMs?.(scale) ?? CASE_TIMEOUT_MS, c.name);
      const figures = Object.entries(r.figures).map(([k, v]) => `${k}=${v}`).join(' ');
      const secs = `${((Date.now() - started) / 1000).toFixed(1)}s`;
      if (r.failures.length === 0) {
        passed += 1;
        line = `PASS ${c.name}: ${figures} took=${secs}`;
      } else {
        failed += 1;
        line = `FAIL ${c.name}: ${figures} took=${secs}\n${r.failures.map((f) => `    - ${f}`).join('\n')}`;
      }
    } catch (err) {
      failed += 1;
      line = `FAIL ${c.name}: error after ${((Date.now() - started) / 1000).toFixed(1)}s: ${(err as Error).stack ?? String(err)}`;
    }
    for (const fn of deferred.reverse()) {
      try {
        await fn();
      } catch (err) {
        line += `\n    cleanup: ${(err as Error).message}`;
      }
    }
    deferred = [];
    console.log(line);
  }
  console.log(`${passed} passed, ${failed} failed (${((Date.now() - suiteStart) / 1000).toFixed(0)}s)`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
