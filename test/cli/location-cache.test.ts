// The noted location (src/cli/location-cache.ts) is taken only while every input of the
// configuration load is as it was: the config file (its identity), the AUTOPILOTD_* variables, the
// flags. A file changed within the last 2 s is never noted (a second change in the same timestamp
// tick could go unseen). Real files and a real clock; HOME is a temp dir.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { notedLocation, noteLocation } from '../../src/cli/location-cache.js';
import { makeTempDir } from '../helpers/daemon.js';
import { waitFor } from '../helpers/wait.js';

test('a noted location holds while the inputs are unchanged, and not after any of them changes', async (t) => {
  const dir = makeTempDir('apd-noted-');
  const oldHome = process.env.HOME;
  process.env.HOME = dir.path;
  t.after(() => {
    process.env.HOME = oldHome;
    dir.cleanup();
  });
  const file = join(dir.path, 'a.toml');
  writeFileSync(file, 'socket_path = "/x/one.sock"\n');
  const flags = { configPath: file };
  const found = { socket_path: '/x/one.sock' };
  const env = { AUTOPILOTD_LOG_LEVEL: 'info' };

  noteLocation(flags, found, env);
  assert.equal(notedLocation(flags, env), null, 'a file written just now is not noted');
  assert.equal(existsSync(join(dir.path, '.autopilot/.client-location.json')), false);

  // Wait on the clock, not a fixed time: the file must be 2 s old for the note to be written.
  await waitFor('the note to be taken', () => {
    noteLocation(flags, found, env);
    return notedLocation(flags, env) !== null;
  }, 20_000);
  assert.deepEqual(notedLocation(flags, env), found);
  assert.equal(notedLocation({ configPath: file, instance: 'b' }, env), null, 'other flags');
  assert.equal(notedLocation(flags, { ...env, AUTOPILOTD_SOCKET_PATH: '/y.sock' }), null, 'another AUTOPILOTD_* variable');
  assert.equal(notedLocation(flags, {}), null, 'a variable gone');
  // The same size, written again: a new mtime and ctime.
  writeFileSync(file, 'socket_path = "/x/two.sock"\n');
  assert.equal(notedLocation(flags, env), null, 'the file rewritten');
});
