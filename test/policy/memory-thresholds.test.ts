import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thresholdWarnings, type MemoryThresholdsConfig } from '../../src/policy/memory-thresholds.js';

const MiB = 1024 * 1024;
const TOTAL = 16384 * MiB;
const sane: MemoryThresholdsConfig = {
  min_available_bytes: 2048 * MiB,
  critical_threshold_bytes: 1024 * MiB,
  worker_max_bytes: 8192 * MiB,
};

const cases: { name: string; config: MemoryThresholdsConfig; totalBytes: number; warnings: string[] }[] = [
  { name: 'sane thresholds give no warning', config: sane, totalBytes: TOTAL, warnings: [] },
  {
    name: 'thresholds at exactly 20 % of RAM and a tree limit equal to RAM give no warning',
    config: { min_available_bytes: 10 * MiB, critical_threshold_bytes: 10 * MiB, worker_max_bytes: 50 * MiB },
    totalBytes: 50 * MiB,
    warnings: [],
  },
  {
    name: 'min_available_bytes above 20 % of RAM is reported in MiB with its share',
    config: { ...sane, min_available_bytes: 4096 * MiB },
    totalBytes: TOTAL,
    warnings: [
      'memory.min_available_bytes is 4096 MiB, 25.0 % of total RAM (16384 MiB); above 20.0 % the memory ' +
        'guard may kill processes on a machine that is merely busy',
    ],
  },
  {
    name: 'critical_threshold_bytes above 20 % of RAM is reported',
    config: { ...sane, critical_threshold_bytes: 3500 * MiB },
    totalBytes: TOTAL,
    warnings: [
      'memory.critical_threshold_bytes is 3500 MiB, 21.4 % of total RAM (16384 MiB); above 20.0 % the memory ' +
        'guard may kill processes on a machine that is merely busy',
    ],
  },
  {
    name: 'a worker_max_bytes above total RAM is reported',
    config: { ...sane, worker_max_bytes: 20000 * MiB },
    totalBytes: TOTAL,
    warnings: [
      'memory.worker_max_bytes is 20000 MiB, more than total RAM (16384 MiB); the machine runs out of ' +
        'memory before the tree limit can trigger',
    ],
  },
  { name: 'no tree limit gives no tree warning', config: { ...sane, worker_max_bytes: null }, totalBytes: TOTAL, warnings: [] },
  {
    name: 'all three problems on a small machine are reported in key order, fractions of a MiB shown',
    config: { min_available_bytes: 1536 * MiB, critical_threshold_bytes: 1024 * MiB, worker_max_bytes: 4096 * MiB },
    totalBytes: 3900.5 * MiB,
    warnings: [
      'memory.min_available_bytes is 1536 MiB, 39.4 % of total RAM (3900.5 MiB); above 20.0 % the memory ' +
        'guard may kill processes on a machine that is merely busy',
      'memory.critical_threshold_bytes is 1024 MiB, 26.3 % of total RAM (3900.5 MiB); above 20.0 % the memory ' +
        'guard may kill processes on a machine that is merely busy',
      'memory.worker_max_bytes is 4096 MiB, more than total RAM (3900.5 MiB); the machine runs out of ' +
        'memory before the tree limit can trigger',
    ],
  },
];
for (const c of cases) {
  test(c.name, () => {
    assert.deepEqual(thresholdWarnings(c.config, c.totalBytes), c.warnings);
  });
}

test('a total RAM of zero or less is a caller mistake and throws, naming the value', () => {
  assert.throws(() => thresholdWarnings(sane, 0), { name: 'RangeError', message: /got 0/ });
  assert.throws(() => thresholdWarnings(sane, -5), { name: 'RangeError', message: /got -5/ });
  assert.throws(() => thresholdWarnings(sane, Number.NaN), { name: 'RangeError', message: /got NaN/ });
});
