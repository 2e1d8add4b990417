// Opening the daemon's files (issue #14, items 6 and 7): never through a symbolic link, only a
// regular file of ours with one link, and 0600. Cases that need another owner chown to uid 65534
// and skip when we are not root.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPrivateFile, openPrivateFile, readPrivateFile, UnsafeFileError } from '../../src/os/private-file.js';
import { scratchArea } from '../helpers/scratch.js';

const { freshDir } = scratchArea('autopilotd-private-file-test-');
const NOBODY = 65534;
const notRoot = process.getuid?.() !== 0 ? 'needs root to chown to another user' : false;
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;

function modeOf(path: string): number {
  return statSync(path).mode & 0o7777;
}

function assertRefused(path: string, text: RegExp): void {
  assert.throws(() => openPrivateFile(path, APPEND), (err: unknown) => {
    assert.ok(err instanceof UnsafeFileError, String(err));
    assert.equal(err.code, 'unsafe_file');
    assert.equal(err.path, path);
    assert.match(err.text, text);
    assert.match(err.message, /; expected a regular file owned by uid \d+ with one link, not a symbolic link$/);
    return true;
  });
  assert.match(checkPrivateFile(path) ?? 'accepted', text, 'checkPrivateFile says the same ahead of time');
  const read = readPrivateFile(path);
  assert.ok(read !== null && 'refused' in read, `readPrivateFile trusted ${path}`);
  assert.match(read.refused, text);
}

test('a new file is created 0600 whatever the umask, and one of ours with another mode is set to 0600', () => {
  const dir = freshDir();
  const previous = process.umask(0);
  let fd: number;
  try {
    fd = openPrivateFile(join(dir, 'new.log'), APPEND).fd;
  } finally {
    process.umask(previous);
  }
  closeSync(fd);
  assert.equal(modeOf(join(dir, 'new.log')), 0o600);
  writeFileSync(join(dir, 'old.log'), 'kept\n', { mode: 0o666 });
  const opened = openPrivateFile(join(dir, 'old.log'), APPEND);
  writeSync(opened.fd, 'appended\n');
  closeSync(opened.fd);
  assert.equal(modeOf(join(dir, 'old.log')), 0o600);
  assert.equal(readFileSync(join(dir, 'old.log'), 'utf8'), 'kept\nappended\n');
  assert.deepEqual(readPrivateFile(join(dir, 'old.log')), { text: 'kept\nappended\n' });
  assert.equal(readPrivateFile(join(dir, 'missing')), null);
  assert.equal(checkPrivateFile(join(dir, 'missing')), null);
});

test('a symbolic link is never followed: its target is neither written nor created', () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'target'), 'secret\n');
  symlinkSync(join(dir, 'target'), join(dir, 'a.log'));
  assertRefused(join(dir, 'a.log'), new RegExp(`^${join(dir, 'a.log')} is a symbolic link to ${join(dir, 'target')}$`));
  assert.equal(readFileSync(join(dir, 'target'), 'utf8'), 'secret\n');
  symlinkSync(join(dir, 'would-be-created'), join(dir, 'dangling.log'));
  assertRefused(join(dir, 'dangling.log'), /is a symbolic link to/);
  assert.equal(existsSync(join(dir, 'would-be-created')), false);
});

test('a second hard link is refused: it could be a file elsewhere that must not be written', () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'elsewhere'), 'secret\n', { mode: 0o600 });
  linkSync(join(dir, 'elsewhere'), join(dir, 'a.log'));
  assertRefused(join(dir, 'a.log'), /has 2 hard links \(regular file, mode 0600\)$/);
  assert.equal(readFileSync(join(dir, 'elsewhere'), 'utf8'), 'secret\n');
});

test('a FIFO is refused at once instead of blocking the open', () => {
  const dir = freshDir();
  const fifo = join(dir, 'a.log');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  // Read-only: with no writer a blocking open would wait forever; O_NONBLOCK lets fstat refuse it.
  assert.throws(() => openPrivateFile(fifo, constants.O_RDONLY), /is not a regular file \(a FIFO, owned by uid \d+\)/);
  assert.match(checkPrivateFile(fifo) ?? '', /a FIFO/);
});

test('a directory is an error (EISDIR) for reading as for writing, naming the path', () => {
  const dir = join(freshDir(), 'a.log');
  mkdirSync(dir);
  for (const flags of [APPEND, constants.O_RDONLY]) {
    assert.throws(() => openPrivateFile(dir, flags), (err: NodeJS.ErrnoException) => err.code === 'EISDIR' && err.message.includes(dir));
  }
});

test('a file owned by another user is refused, even one everybody may write', { skip: notRoot }, () => {
  const path = join(freshDir(), 'a.log');
  writeFileSync(path, 'theirs\n');
  chmodSync(path, 0o666);
  chownSync(path, NOBODY, NOBODY);
  assertRefused(path, new RegExp(`^${path} is owned by uid ${NOBODY} \\(regular file, mode 0666\\)$`));
  assert.equal(readFileSync(path, 'utf8'), 'theirs\n');
  assert.equal(modeOf(path), 0o666, 'not chmod-ed either');
});
