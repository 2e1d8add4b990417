// The daemon's clock, read from process.uptime() instead of node:perf_hooks (#18 RSS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monotonicMs } from '../../src/os/monotonic-clock.js';

test('monotonicMs counts milliseconds since the process started, as performance.now() does, and never goes back', async () => {
  const before = performance.now();
  const ours = monotonicMs();
  // Same clock, origins a few ms apart (process start vs. the time origin Node records).
  assert.ok(Math.abs(ours - before) < 1_000, `monotonicMs ${ours} vs performance.now ${before}`);
  let last = monotonicMs();
  for (let i = 0; i < 10_000; i += 1) {
    const now = monotonicMs();
    assert.ok(now >= last);
    last = now;
  }
  const t0 = monotonicMs();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const elapsed = monotonicMs() - t0;
  assert.ok(elapsed >= 49 && elapsed < 5_000, `a 50 ms timer took ${elapsed} ms by monotonicMs`);
});
