// The deadline on the shutdown after an internal error (#15): when the orderly stop has not
// finished in time, every process carrying the instance marker is SIGKILLed, a bystander is not,
// the reason is logged, and the daemon exits. Real processes and signals; only the exit is a stand-in.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { armFatalStopDeadline } from '../../src/daemon/fatal-deadline.js';
import { Logger, type LineSink } from '../../src/log/logger.js';
import { ProcTable } from '../../src/os/proc-table.js';
import { protectedPidsOf } from '../../src/os/process-tree.js';
import { isAlive, see, startBystander, uniqueInstanceId } from '../os/live-processes.js';

test('past the deadline the marked processes are SIGKILLed, a bystander is left alone, and the daemon exits (#15)', async (t) => {
  const instanceId = uniqueInstanceId('fatal');
  // Two marked processes the orderly stop "did not end": a group leader that ignores SIGTERM, and
  // a member that left its group and session (what only the marker still finds).
  const marked = spawn('sh', ['-c', 'trap "" TERM; setsid sleep 1000 & echo $!; exec sleep 1000'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, AUTOPILOTD_INSTANCE: instanceId },
  });
  const [line] = (await once(marked.stdout!, 'data')) as [Buffer];
  const escapee = see(Number(line.toString().trim()));
  const markedExited = once(marked, 'exit');
  const leader = see(marked.pid!);
  const bystander = startBystander();
  t.after(async () => {
    for (const p of [leader, escapee]) if (isAlive(p)) process.kill(p.pid, 'SIGKILL');
    await bystander.stop();
  });

  const lines: string[] = [];
  const sink: LineSink = { write: (l) => lines.push(l) };
  const table = new ProcTable();
  const exited = new Promise<void>((resolve) => {
    armFatalStopDeadline({
      deadlineMs: 300,
      identity: () => ({ root: null, pgid: null, instanceId, uid: process.getuid!(), protectedPids: protectedPidsOf(table, process.pid) }),
      table,
      logger: new Logger(sink, 'plain', 'info'),
      exit: resolve,
    });
  });
  // The timer is unref'd; keep the test's own loop alive while it runs.
  const keepAlive = setInterval(() => {}, 1000);
  await exited;
  clearInterval(keepAlive);

  const [, signal] = (await markedExited) as [number | null, NodeJS.Signals | null];
  assert.equal(signal, 'SIGKILL', 'the marked leader, which ignores SIGTERM, was SIGKILLed');
  const deadline = Date.now() + 10_000;
  while (isAlive(escapee) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(isAlive(escapee), false, 'the marked escapee outside the group and session was SIGKILLed too');
  assert.equal(isAlive(bystander.seen), true, 'the unmarked bystander is alive');
  assert.equal(lines.length, 1, lines.join(''));
  assert.match(lines[0]!, /the shutdown after an internal error did not finish in 300 ms; killing 2 marked processes and exiting/);
});
