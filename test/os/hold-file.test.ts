import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HoldFiles, holdFilePlace, removeStaleHoldDirs } from '../../src/os/hold-file.js';
import { makeTempDir } from '../helpers/daemon.js';

function holdFiles(t: { after(fn: () => void): void }): { files: HoldFiles; parent: string } {
  const temp = makeTempDir('apd-hold-');
  const files = new HoldFiles(holdFilePlace(join(temp.path, 'd.pid')));
  t.after(() => {
    files.dispose();
    temp.cleanup();
  });
  return { files, parent: temp.path };
}

test('each generation has its own path in a private directory, made on first use and removed by dispose', (t) => {
  const { files, parent } = holdFiles(t);
  assert.deepEqual(files.take(1), { kind: 'absent' }, 'nothing made yet, nothing to read');
  const first = files.pathFor(1);
  const second = files.pathFor(2);
  assert.notEqual(first, second);
  assert.equal(dirname(first), dirname(second));
  assert.equal(dirname(dirname(first)), parent);
  assert.match(basename(dirname(first)), /^d\.pid\.hold-[A-Za-z0-9]{6}$/, 'named after the pid file, beside it');
  assert.equal(statSync(dirname(first)).mode & 0o777, 0o700);
  files.dispose();
  assert.equal(existsSync(dirname(first)), false);
});

test('a written time is read once, then the file is gone', (t) => {
  const { files } = holdFiles(t);
  const path = files.pathFor(3);
  writeFileSync(path, '1796184000\n');
  assert.deepEqual(files.take(3), { kind: 'text', text: '1796184000\n' });
  assert.equal(existsSync(path), false);
  assert.deepEqual(files.take(3), { kind: 'absent' });
  assert.deepEqual(files.take(4), { kind: 'absent' }, 'another run reads its own path only');
});

test('a symbolic link, a directory or a FIFO is not read (and a FIFO does not block), each said unreadable', (t) => {
  const { files, parent } = holdFiles(t);
  const target = join(parent, 'target');
  writeFileSync(target, '1796184000');
  symlinkSync(target, files.pathFor(1));
  assert.deepEqual(files.take(1), { kind: 'unreadable', reason: 'a symbolic link' });
  mkdirSync(files.pathFor(2));
  assert.equal(files.take(2).kind, 'unreadable');
  execFileSync('mkfifo', [files.pathFor(3)]);
  assert.deepEqual(files.take(3), { kind: 'unreadable', reason: 'not a regular file' });
  assert.equal(existsSync(files.pathFor(3)), false, 'removed after the look');
});

test('only the first 256 bytes of a large file are read', (t) => {
  const { files } = holdFiles(t);
  writeFileSync(files.pathFor(1), 'x'.repeat(100_000));
  const reading = files.take(1);
  assert.equal(reading.kind === 'text' ? reading.text.length : -1, 256);
});

test('the hold directories a killed daemon left beside its pid file are removed by the next one, and nothing else', (t) => {
  const temp = makeTempDir('apd-hold-');
  t.after(() => temp.cleanup());
  const pidFile = join(temp.path, 'd.pid');
  // A predecessor's, with the file its worker wrote; another pid file's; and unrelated names.
  const killed = new HoldFiles(holdFilePlace(pidFile));
  writeFileSync(killed.pathFor(7), '1796184000\n');
  const other = new HoldFiles(holdFilePlace(join(temp.path, 'other.pid')));
  const otherDir = dirname(other.pathFor(1));
  t.after(() => other.dispose());
  for (const name of ['d.pid', 'd.pid.instance', 'd.pid.hold-toolong1', 'd.pid.hold-']) writeFileSync(join(temp.path, name), '');
  assert.deepEqual(removeStaleHoldDirs(holdFilePlace(pidFile)), [dirname(killed.pathFor(7))]);
  assert.equal(existsSync(dirname(killed.pathFor(7))), false);
  assert.equal(existsSync(otherDir), true, 'another pid file\'s directory stays');
  for (const name of ['d.pid', 'd.pid.instance', 'd.pid.hold-toolong1', 'd.pid.hold-']) assert.equal(existsSync(join(temp.path, name)), true, name);
  assert.deepEqual(removeStaleHoldDirs(holdFilePlace(join(temp.path, 'missing', 'd.pid'))), [], 'no directory, nothing to do');
});
