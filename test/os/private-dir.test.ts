// The private-directory rules (issue #14, item 6): what is created, what is accepted and what is
// refused, in real directories. Cases that need another owner chown to uid 65534 and skip when
// we are not root.

import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPrivateDir, ensurePrivateDir, PrivateDirError, type PrivateDirProblemKind } from '../../src/os/private-dir.js';
import { scratchArea } from '../helpers/scratch.js';

const { freshDir } = scratchArea('autopilotd-private-dir-test-');
const NOBODY = 65534;
const notRoot = process.getuid?.() !== 0 ? 'needs root to chown to another user' : false;

function modeOf(path: string): number {
  return statSync(path).mode & 0o7777;
}

/** Asserts that both checkPrivateDir and ensurePrivateDir refuse dir, for the same path and reason. */
function assertRefused(dir: string, kind: PrivateDirProblemKind, at: string, text: RegExp): void {
  const problem = checkPrivateDir(dir);
  assert.ok(problem !== null, `checkPrivateDir accepted ${dir}`);
  assert.deepEqual([problem.kind, problem.path], [kind, at], problem.text);
  assert.match(problem.text, text);
  assert.throws(() => ensurePrivateDir(dir), (err: unknown) => {
    assert.ok(err instanceof PrivateDirError, String(err));
    assert.equal(err.code, 'unsafe_dir');
    assert.deepEqual(err.problem, problem);
    assert.match(err.message, /; expected a directory owned by uid \d+, not a symbolic link, not writable by group or others, under directories that only root or uid \d+ can change$/);
    return true;
  });
}

test('missing components are created one by one with mode 0700, whatever the umask', () => {
  const base = freshDir();
  const dir = join(base, 'a', 'b', 'c');
  for (const umask of [0, 0o277]) {
    const previous = process.umask(umask);
    try {
      ensurePrivateDir(join(dir, String(umask)));
    } finally {
      process.umask(previous);
    }
  }
  for (const path of [join(base, 'a'), join(base, 'a', 'b'), dir, join(dir, '0'), join(dir, '191')]) {
    assert.equal(modeOf(path), 0o700, path);
  }
});

test('checkPrivateDir creates nothing: a missing directory with a safe way to it is fine', () => {
  const base = freshDir();
  assert.equal(checkPrivateDir(join(base, 'x', 'y')), null);
  assert.equal(existsSync(join(base, 'x')), false);
});

test('an existing directory of ours that others cannot write is accepted and keeps its mode', () => {
  const dir = join(freshDir(), 'run');
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  ensurePrivateDir(dir);
  assert.equal(checkPrivateDir(dir), null);
  assert.equal(modeOf(dir), 0o755);
});

test('a directory that is a symbolic link is refused, even to a private directory, and left as it is', () => {
  const base = freshDir();
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync(join(base, 'real'), join(base, 'run'));
  assertRefused(join(base, 'run'), 'symlink', join(base, 'run'), new RegExp(`^${join(base, 'run')} is a symbolic link to ${join(base, 'real')}$`));
  symlinkSync(join(base, 'nowhere'), join(base, 'dangling'));
  assertRefused(join(base, 'dangling'), 'symlink', join(base, 'dangling'), /is a symbolic link to/);
  assert.equal(existsSync(join(base, 'nowhere')), false, 'a dangling link is not "repaired" by creating its target');
});

test('a directory writable by group or others is refused, sticky or not', () => {
  for (const mode of [0o770, 0o757, 0o1777]) {
    const dir = join(freshDir(), 'run');
    mkdirSync(dir);
    chmodSync(dir, mode);
    assertRefused(dir, 'writable', dir, new RegExp(`is writable by group or others \\(directory owned by uid \\d+ with mode 0${mode.toString(8)}\\)$`));
    assert.equal(modeOf(dir), mode, 'the directory is not "fixed" behind the user\'s back');
  }
});

test('something other than a directory is refused, as the directory and on the way to it', () => {
  const base = freshDir();
  writeFileSync(join(base, 'file'), '');
  assertRefused(join(base, 'file'), 'not_directory', join(base, 'file'), /is not a directory \(regular file owned by uid \d+ with mode 0\d+\)$/);
  assertRefused(join(base, 'file', 'run'), 'not_directory', join(base, 'file'), new RegExp(`^${join(base, 'file', 'run')} is under ${join(base, 'file')}, which is not a directory`));
});

test('a directory under a parent others can write without the sticky bit is refused; with the sticky bit it is fine', () => {
  const base = freshDir();
  const open = join(base, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  mkdirSync(join(open, 'run'), { mode: 0o700 });
  assertRefused(join(open, 'run'), 'unsafe_parent', open, new RegExp(`^${join(open, 'run')} is under ${open}, which others can write without the sticky bit \\(directory owned by uid \\d+ with mode 0777\\)$`));
  assertRefused(join(open, 'missing', 'run'), 'unsafe_parent', open, /which others can write without the sticky bit/);
  assert.equal(existsSync(join(open, 'missing')), false, 'nothing is created under an unsafe parent');

  const sticky = join(base, 'sticky');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  ensurePrivateDir(join(sticky, 'run'));
  assert.equal(checkPrivateDir(join(sticky, 'run')), null, 'like /tmp: only we can rename what we own there');
  assert.equal(modeOf(join(sticky, 'run')), 0o700);
});

test('a symbolic link on the way is followed when root or we own it, and the directories it leads through are checked', () => {
  const base = freshDir();
  mkdirSync(join(base, 'real', 'run'), { recursive: true, mode: 0o700 });
  symlinkSync('real', join(base, 'alias'));
  assert.equal(checkPrivateDir(join(base, 'alias', 'run')), null);
  ensurePrivateDir(join(base, 'alias', 'run', 'deeper'));
  assert.equal(modeOf(join(base, 'real', 'run', 'deeper')), 0o700);

  const open = join(base, 'open');
  mkdirSync(join(open, 'run'), { recursive: true, mode: 0o700 });
  chmodSync(open, 0o777);
  symlinkSync(open, join(base, 'to-open'));
  assertRefused(join(base, 'to-open', 'run'), 'unsafe_parent', open, /which others can write without the sticky bit/);
});

test('a loop of symbolic links is refused rather than followed forever', () => {
  const base = freshDir();
  symlinkSync(join(base, 'b'), join(base, 'a'));
  symlinkSync(join(base, 'a'), join(base, 'b'));
  assertRefused(join(base, 'a', 'run'), 'too_many_links', join(base, 'a'), /leads through more than 40 symbolic links/);
});

test('a directory owned by another user is refused', { skip: notRoot }, () => {
  const dir = join(freshDir(), 'run');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, NOBODY, NOBODY);
  assertRefused(dir, 'foreign_owner', dir, new RegExp(`^${dir} is owned by another user \\(directory owned by uid ${NOBODY} with mode 0700\\)$`));
});

test('a directory under a parent another user owns is refused, and so is one reached through their symbolic link', { skip: notRoot }, () => {
  const base = freshDir();
  const theirs = join(base, 'theirs');
  mkdirSync(join(theirs, 'run'), { recursive: true, mode: 0o700 });
  chmodSync(theirs, 0o755);
  chownSync(theirs, NOBODY, NOBODY);
  assertRefused(join(theirs, 'run'), 'unsafe_parent', theirs, new RegExp(`which another user owns \\(directory owned by uid ${NOBODY} with mode 0755\\)$`));

  mkdirSync(join(base, 'mine', 'run'), { recursive: true, mode: 0o700 });
  const sticky = join(base, 'sticky');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  // In a sticky directory the link's owner may replace it at any time.
  symlinkSync(join(base, 'mine'), join(sticky, 'link'));
  lchownSync(join(sticky, 'link'), NOBODY, NOBODY);
  assertRefused(join(sticky, 'link', 'run'), 'unsafe_parent', join(sticky, 'link'), new RegExp(`is under ${join(sticky, 'link')}, a symbolic link to ${join(base, 'mine')} owned by uid ${NOBODY}$`));
  lchownSync(join(sticky, 'link'), 0, 0);
  assert.equal(checkPrivateDir(join(sticky, 'link', 'run')), null, 'the same link owned by root is trusted');
});
