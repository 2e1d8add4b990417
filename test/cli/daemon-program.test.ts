// The detached daemon's program (issue #18, daemon RSS): `start` runs it from the daemon bundle,
// dist/bin/daemon.cjs, with the daemon's V8 flags, so that its process holds that one bundle and
// not the CLI's beside it; run by hand with anything but what `start` passes, that bundle refuses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../../src/cli/daemon-node-flags.js';
import { REPO_ROOT, cleanEnv, runProgram } from '../helpers/daemon.js';
import { argvOf, sandbox } from '../helpers/sandbox.js';

const DAEMON_BUNDLE = join(REPO_ROOT, 'dist/bin/daemon.cjs');

test('start runs the detached daemon as the daemon bundle with the daemon V8 flags', async (t) => {
  const box = sandbox(t);
  const { pid } = await box.start();
  assert.deepEqual(argvOf(pid), [process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_BUNDLE, 'start', '--foreground', '--daemonized', `--config=${box.configPath}`]);
  const r = await box.cli(['status']);
  assert.equal(r.code, 0, r.stderr);
});

test('the daemon bundle run by hand with another command exits 64 and says to run autopilotd', async () => {
  for (const args of [['status'], ['--version'], []]) {
    const r = await runProgram(process.execPath, [DAEMON_BUNDLE, ...args], { env: cleanEnv(), cwd: REPO_ROOT, timeoutMs: 30_000, what: `daemon.cjs ${args.join(' ')}` });
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^autopilotd: daemon\.cjs runs only the daemon that `autopilotd start` spawns; run autopilotd instead\n$/);
  }
});
