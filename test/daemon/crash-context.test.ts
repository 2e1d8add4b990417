// The exit event carries the crash context (issue #17): a real worker under an in-process
// supervisor, its events heard as a subscriber (the notify command and `events` read them so).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { Logger } from '../../src/log/logger.js';
import type { LogEvent } from '../../src/log/events.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { WorkerSupervisor } from '../../src/daemon/worker-supervisor.js';
import { makeTempDir } from '../helpers/daemon.js';
import { waitFor } from '../helpers/wait.js';

test('the worker-exited event and lastExitTail() carry the last lines of the run, marked with their stream', async (t) => {
  const dir = makeTempDir('apd-tail-');
  t.after(() => dir.cleanup());
  // One stream for the lines whose order is checked: two pipes are read in no fixed order.
  const config: Config = {
    ...DEFAULTS,
    working_dir: dir.path,
    worker: { ...DEFAULTS.worker, command: ['sh', '-c', 'echo started; echo one >&2; echo two >&2; echo three >&2; printf four >&2; exit 7'], stop_timeout_ms: 2000, crash_context_lines: 3 },
    restart: { ...DEFAULTS.restart, initial_backoff_ms: 600_000, max_backoff_ms: 600_000 },
  };
  const logger = new Logger({ write: () => {} }, 'plain', 'info');
  const events: LogEvent[] = [];
  logger.subscribe((r) => { if (r.event !== null) events.push(r.event); });
  const supervisor = new WorkerSupervisor(config, {
    logger, table: new ProcTable(), instanceId: randomBytes(9).toString('base64url'), uid: process.getuid!(),
    protectedPids: () => new Set([process.pid]), output: 'log', holdFiles: { parent: dir.path, prefix: 'd.pid.hold-' },
  });
  t.after(async () => {
    await supervisor.stop();
    supervisor.dispose();
  });
  await supervisor.start();
  await waitFor('the restart to be scheduled (the tree is gone)', () => events.some((e) => e.kind === 'restart-scheduled'), 30_000);
  assert.deepEqual(supervisor.lastExitTail(), [
    { stream: 'stderr', line: 'two', cut: false },
    { stream: 'stderr', line: 'three', cut: false },
    { stream: 'stderr', line: 'four', cut: false },
  ], 'the last three lines, the unfinished last one included');
  const exited = events.find((e) => e.kind === 'worker-exited');
  assert.ok(exited?.kind === 'worker-exited');
  assert.equal(exited.code, 7);
  // The event has what was read by the exit: libuv may report the exit before the pipes' last bytes.
  const stderrLines = ['one', 'two', 'three', 'four'];
  const got = exited.tail.filter((l) => l.stream === 'stderr').map((l) => l.line);
  const at = stderrLines.indexOf(got[0] ?? 'one');
  assert.deepEqual(got, stderrLines.slice(at, at + got.length), `the event's tail is in order: ${JSON.stringify(exited.tail)}`);
  assert.ok(exited.tail.length <= 3);
  assert.ok(exited.tail.every((l) => l.stream === 'stderr' || (l.stream === 'stdout' && l.line === 'started')));
});
