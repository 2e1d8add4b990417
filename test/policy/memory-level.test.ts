import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyMemoryLevel, isAtLeast, lesserMemoryLevel, type MemoryLevel, type MemoryLevelConfig,
} from '../../src/policy/memory-level.js';
import type { PsiReading } from '../../src/policy/memory-sample.js';

const MiB = 1024 * 1024;
const MIN = 2048 * MiB;
const CRITICAL = 1024 * MiB;
const withPsi: MemoryLevelConfig = { min_available_bytes: MIN, critical_threshold_bytes: CRITICAL, psi_some_avg10: 20 };
const withoutPsi: MemoryLevelConfig = { ...withPsi, psi_some_avg10: null };
const psi = (someAvg10: number, fullAvg10 = 0): PsiReading => ({ someAvg10, fullAvg10 });

const cases: { name: string; availableBytes: number; psi: PsiReading | null; config: MemoryLevelConfig; level: MemoryLevel }[] = [
  { name: 'available far above the minimum is ok', availableBytes: 8192 * MiB, psi: null, config: withoutPsi, level: 'ok' },
  { name: 'available exactly at min_available_bytes is ok', availableBytes: MIN, psi: null, config: withoutPsi, level: 'ok' },
  { name: 'one byte below min_available_bytes is low', availableBytes: MIN - 1, psi: null, config: withoutPsi, level: 'low' },
  { name: 'available exactly at critical_threshold_bytes is low, not critical', availableBytes: CRITICAL, psi: null, config: withoutPsi, level: 'low' },
  { name: 'one byte below critical_threshold_bytes is critical', availableBytes: CRITICAL - 1, psi: null, config: withoutPsi, level: 'critical' },
  { name: 'nothing available is critical', availableBytes: 0, psi: null, config: withoutPsi, level: 'critical' },
  { name: 'PSI configured but unavailable on the kernel is ignored', availableBytes: MIN, psi: null, config: withPsi, level: 'ok' },
  { name: 'PSI just below its threshold is ok', availableBytes: MIN, psi: psi(19.99), config: withPsi, level: 'ok' },
  { name: 'PSI exactly at its threshold is low', availableBytes: MIN, psi: psi(20), config: withPsi, level: 'low' },
  { name: 'PSI above its threshold is low even with plenty available', availableBytes: 8192 * MiB, psi: psi(55), config: withPsi, level: 'low' },
  { name: 'PSI is ignored when psi_some_avg10 is null', availableBytes: MIN, psi: psi(99), config: withoutPsi, level: 'ok' },
  { name: 'a high full avg10 alone does not count', availableBytes: MIN, psi: psi(5, 90), config: withPsi, level: 'ok' },
  { name: 'PSI pressure does not hide a critical reading', availableBytes: CRITICAL - 1, psi: psi(80), config: withPsi, level: 'critical' },
  { name: 'PSI below threshold does not hide a low reading', availableBytes: MIN - 1, psi: psi(0), config: withPsi, level: 'low' },
  {
    name: 'a critical threshold above the minimum still makes the band between them critical',
    availableBytes: MIN + 1,
    psi: null,
    config: { ...withoutPsi, critical_threshold_bytes: MIN + 2 },
    level: 'critical',
  },
];
for (const c of cases) {
  test(c.name, () => {
    assert.equal(classifyMemoryLevel({ availableBytes: c.availableBytes, psi: c.psi }, c.config), c.level);
  });
}

const LEVELS: MemoryLevel[] = ['ok', 'low', 'critical'];
const lesser: Record<string, MemoryLevel> = {
  'ok,ok': 'ok', 'ok,low': 'ok', 'ok,critical': 'ok',
  'low,ok': 'ok', 'low,low': 'low', 'low,critical': 'low',
  'critical,ok': 'ok', 'critical,low': 'low', 'critical,critical': 'critical',
};
const atLeast: Record<string, boolean> = {
  'ok,ok': true, 'ok,low': false, 'ok,critical': false,
  'low,ok': true, 'low,low': true, 'low,critical': false,
  'critical,ok': true, 'critical,low': true, 'critical,critical': true,
};
for (const a of LEVELS) {
  for (const b of LEVELS) {
    test(`two readings ${a} and ${b} agree on ${lesser[`${a},${b}`]}`, () => {
      assert.equal(lesserMemoryLevel(a, b), lesser[`${a},${b}`]);
    });
    test(`${a} is ${atLeast[`${a},${b}`] ? '' : 'not '}at least ${b}`, () => {
      assert.equal(isAtLeast(a, b), atLeast[`${a},${b}`]);
    });
  }
}
