// Without the native helper, `start` and `status` each say once, in one line, what is missing and
// why (issue #16); the output contracts stay as they are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sandbox } from '../helpers/sandbox.js';
import type { StatusData } from '../../src/control/protocol.js';

const NO_NATIVE = { _AUTOPILOTD_NO_NATIVE: '1' };
const WARNING = 'autopilotd: warning: native helper not loaded (disabled by _AUTOPILOTD_NO_NATIVE=1); sd_notify goes through systemd-notify, which needs NotifyAccess=all\n';

test('a detached start without the native helper says so once; status shows why', async (t) => {
  const box = sandbox(t);
  const r = await box.cli(['start'], { env: NO_NATIVE });
  box.remember();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^autopilotd started: pid \d+, worker pid \d+\n$/);
  assert.equal(r.stderr, WARNING);
  await box.waitForLog(/native helper not loaded/);
  assert.equal(box.log().split('\n').filter((l) => l.includes('native helper')).length, 1);

  const human = await box.cli(['status']);
  assert.equal(human.code, 0, human.stderr);
  assert.deepEqual(human.stdout.split('\n').filter((l) => l.includes('native')), ['  native:    not loaded (disabled by _AUTOPILOTD_NO_NATIVE=1); sd_notify goes through systemd-notify']);
  const json = JSON.parse((await box.cli(['status', '--json'])).stdout) as StatusData;
  assert.deepEqual(json.daemon.native, { loaded: false, reason: 'disabled by _AUTOPILOTD_NO_NATIVE=1' });
  // Operator actions are still logged; who sent them cannot be told without SO_PEERCRED.
  assert.equal((await box.cli(['restart-worker'])).code, 0);
  await box.waitForLog(/ INFO {2}operator: restart-worker from a client \(client pid unknown\)$/);
  assert.equal((await box.cli(['stop'])).code, 0);
});

test('with the helper built, start and status say nothing about it', async (t) => {
  const box = sandbox(t);
  const r = await box.cli(['start']);
  box.remember();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const human = await box.cli(['status']);
  assert.doesNotMatch(human.stdout, /native/);
  assert.equal((await box.cli(['stop'])).code, 0);
});
