// Every broken configuration in test/fixtures/bad-config/ (and the directory / ENOTDIR / unreadable
// cases made at run time) is refused by `autopilotd start` with exit 78, a stderr line naming the
// file, line and key, and nothing started. The reliability suite runs the same cases.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { badConfigCases, runBadConfig } from '../helpers/bad-config.js';

test('there are at least 30 broken-config fixtures', () => {
  assert.ok(badConfigCases().length >= 30, `only ${badConfigCases().length} cases`);
});

for (const c of badConfigCases()) {
  test(`start refuses ${c.name}: exit 78 naming where and what, nothing started`, c.knownGap === undefined ? {} : { todo: c.knownGap }, async () => {
    assert.deepEqual(await runBadConfig(c), []);
  });
}
