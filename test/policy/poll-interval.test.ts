import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASELINE_GROWTH_BYTES_PER_S, POLL_FLOOR_MS, TIME_TO_THRESHOLD_FRACTION, UNKNOWN_GROWTH_BYTES_PER_S,
  intervalForHeadroomMs, nextPollIntervalMs, type PollIntervalConfig, type PollPoint,
} from '../../src/policy/poll-interval.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const config: PollIntervalConfig = {
  poll_interval_ms: 5000,
  min_available_bytes: 2 * GiB,
  critical_threshold_bytes: 1 * GiB,
  worker_max_bytes: 300 * MiB,
};
const point = (atMs: number, availableBytes: number, treeBytes: number): PollPoint => ({ atMs, availableBytes, treeBytes });
const PLENTY = 12 * GiB;

test('the constants are the documented ones', () => {
  // The leak scenario in memory-guard.test.ts depends on these; change them together.
  assert.equal(POLL_FLOOR_MS, 100);
  assert.equal(TIME_TO_THRESHOLD_FRACTION, 0.5);
  assert.equal(UNKNOWN_GROWTH_BYTES_PER_S, 100 * MiB);
  assert.equal(BASELINE_GROWTH_BYTES_PER_S, 20 * MiB);
});

const headroomCases: { name: string; headroomBytes: number; growthBytesPerMs: number | null; ms: number }[] = [
  { name: 'no headroom polls at the floor', headroomBytes: 0, growthBytesPerMs: null, ms: 100 },
  { name: 'negative headroom (already over) polls at the floor', headroomBytes: -50 * MiB, growthBytesPerMs: 1, ms: 100 },
  { name: 'unknown growth assumes 100 MiB/s: 200 MiB left polls in 1 s', headroomBytes: 200 * MiB, growthBytesPerMs: null, ms: 1000 },
  { name: 'a measured 40 MiB/s with 80 MiB left polls at half the 2 s to reach it', headroomBytes: 80 * MiB, growthBytesPerMs: (40 * MiB) / 1000, ms: 1000 },
  { name: 'a measured 400 MiB/s with 80 MiB left polls in 100 ms', headroomBytes: 80 * MiB, growthBytesPerMs: (400 * MiB) / 1000, ms: 100 },
  { name: 'a slow measured rate still assumes 20 MiB/s: 40 MiB left polls in 1 s', headroomBytes: 40 * MiB, growthBytesPerMs: (1 * MiB) / 1000, ms: 1000 },
  { name: 'shrinking use still assumes 20 MiB/s', headroomBytes: 40 * MiB, growthBytesPerMs: -(50 * MiB) / 1000, ms: 1000 },
  { name: 'a prediction below the floor is raised to the floor', headroomBytes: 1 * MiB, growthBytesPerMs: null, ms: 100 },
  { name: 'a prediction above poll_interval_ms is capped to it', headroomBytes: 10 * GiB, growthBytesPerMs: null, ms: 5000 },
];
for (const c of headroomCases) {
  test(c.name, () => {
    assert.equal(intervalForHeadroomMs(c.headroomBytes, c.growthBytesPerMs, config), c.ms);
  });
}

test('the interval never decreases as headroom grows, and stays within [100, poll_interval_ms], for every growth rate', () => {
  const rates: (number | null)[] = [null, -(100 * MiB) / 1000, 0, (5 * MiB) / 1000, (40 * MiB) / 1000, (2 * GiB) / 1000];
  for (const rate of rates) {
    let previousMs = 0;
    const seen = new Set<number>();
    for (let headroomMiB = -10; headroomMiB <= 40_000; headroomMiB += 7) {
      const ms = intervalForHeadroomMs(headroomMiB * MiB, rate, config);
      assert.ok(ms >= previousMs, `rate ${rate}: ${headroomMiB} MiB gave ${ms} ms after ${previousMs} ms`);
      assert.ok(ms >= 100 && ms <= 5000, `rate ${rate}: ${ms} ms is outside [100, 5000]`);
      previousMs = ms;
      seen.add(ms);
    }
    assert.ok(seen.has(100) && seen.has(5000), `rate ${rate}: the sweep should reach both ends`);
    assert.ok(seen.size > 2, `rate ${rate}: the interval should take values between the ends`);
  }
});

test('the interval never decreases as system headroom grows, with and without a previous sample', () => {
  for (const withPrevious of [false, true]) {
    let previousMs = 0;
    for (let availableMiB = 1000; availableMiB <= 10_000; availableMiB += 13) {
      const current = point(1000, availableMiB * MiB, 50 * MiB);
      const previous = withPrevious ? point(0, (availableMiB + 30) * MiB, 50 * MiB) : null;
      const ms = nextPollIntervalMs(current, previous, { ...config, worker_max_bytes: null });
      assert.ok(ms >= previousMs && ms >= 100 && ms <= 5000, `${availableMiB} MiB available gave ${ms} ms`);
      previousMs = ms;
    }
    assert.equal(previousMs, 5000);
  }
});

test('the interval never decreases as tree headroom grows', () => {
  let previousMs = Infinity;
  for (let treeMiB = 0; treeMiB <= 320; treeMiB += 1) {
    const ms = nextPollIntervalMs(point(500, PLENTY, treeMiB * MiB), point(0, PLENTY, (treeMiB - 10) * MiB), config);
    assert.ok(ms <= previousMs && ms >= 100 && ms <= 5000, `tree at ${treeMiB} MiB gave ${ms} ms`);
    previousMs = ms;
  }
  assert.equal(previousMs, 100);
});

const nextCases: { name: string; current: PollPoint; previous: PollPoint | null; config: PollIntervalConfig; ms: number }[] = [
  { name: 'plenty of headroom everywhere polls at poll_interval_ms', current: point(0, PLENTY, 10 * MiB), previous: null, config: { ...config, worker_max_bytes: 100 * GiB }, ms: 5000 },
  { name: 'the system side counts headroom above min_available_bytes', current: point(0, 2 * GiB + 100 * MiB, 0), previous: null, config: { ...config, worker_max_bytes: null }, ms: 500 },
  { name: 'the system side uses the measured fall of available memory', current: point(1000, 2 * GiB + 400 * MiB, 0), previous: point(0, 2 * GiB + 800 * MiB, 0), config: { ...config, worker_max_bytes: null }, ms: 500 },
  { name: 'available below min_available_bytes polls at the floor', current: point(0, 2 * GiB - 1, 0), previous: null, config: { ...config, worker_max_bytes: null }, ms: 100 },
  { name: 'a critical threshold set above the minimum is the one that counts', current: point(0, 3 * GiB + 100 * MiB, 0), previous: null, config: { ...config, critical_threshold_bytes: 3 * GiB, worker_max_bytes: null }, ms: 500 },
  { name: 'the tree side uses the measured growth of the tree', current: point(1000, PLENTY, 220 * MiB), previous: point(0, PLENTY, 180 * MiB), config, ms: 1000 },
  { name: 'the tree side without a previous sample assumes 100 MiB/s', current: point(0, PLENTY, 100 * MiB), previous: null, config, ms: 1000 },
  { name: 'a tree over worker_max_bytes polls at the floor', current: point(0, PLENTY, 301 * MiB), previous: null, config, ms: 100 },
  { name: 'a tree exactly at worker_max_bytes polls at the floor', current: point(0, PLENTY, 300 * MiB), previous: null, config, ms: 100 },
  { name: 'no tree limit ignores the tree', current: point(0, PLENTY, 100 * GiB), previous: null, config: { ...config, worker_max_bytes: null }, ms: 5000 },
  { name: 'the nearer threshold wins: system', current: point(0, 2 * GiB + 20 * MiB, 0), previous: null, config: { ...config, worker_max_bytes: 100 * GiB }, ms: 100 },
  { name: 'the nearer threshold wins: tree', current: point(0, PLENTY, 280 * MiB), previous: null, config, ms: 100 },
  { name: 'two samples at the same instant give no rate', current: point(0, PLENTY, 200 * MiB), previous: point(0, PLENTY, 100 * MiB), config, ms: 500 },
  { name: 'a clock step backwards gives no rate', current: point(0, PLENTY, 200 * MiB), previous: point(10, PLENTY, 100 * MiB), config, ms: 500 },
  { name: 'a poll_interval_ms below the floor is honoured', current: point(0, PLENTY, 0), previous: null, config: { ...config, poll_interval_ms: 50 }, ms: 50 },
];
for (const c of nextCases) {
  test(c.name, () => {
    assert.equal(nextPollIntervalMs(c.current, c.previous, c.config), c.ms);
  });
}
