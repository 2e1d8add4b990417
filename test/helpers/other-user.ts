// A second local user for the tests that attack the daemon as someone else would: created by the
// test under a name it owns (apdt + random hex), used through setpriv, and removed by that name.
// Only root can do this; otherUserOrSkip() says why a test skips elsewhere.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface OtherUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** argv run as this user (real and effective uid and gid, no supplementary groups), to completion. */
  run(argv: string[], opts?: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string>;
  /** argv started as this user; the caller ends it by PID. */
  spawn(argv: string[], opts?: SpawnOptions): ChildProcess;
  /** userdel by the name this helper gave; its processes must be gone first. Idempotent. */
  remove(): void;
}

/** Why a test that needs a second user cannot run here, or null when it can. */
export function otherUserUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create a second user';
  for (const tool of ['useradd', 'userdel', 'setpriv']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool}`;
  }
  return null;
}

export function createOtherUser(): OtherUser {
  const why = otherUserUnavailable();
  if (why !== null) throw new Error(`createOtherUser: ${why}`);
  const name = `apdt${randomBytes(5).toString('hex')}`;
  const add = spawnSync('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', name], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`useradd ${name} failed: ${add.stderr}`);
  const id = (flag: string): number => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  const asUser = (argv: string[]): string[] => [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...argv];
  let removed = false;
  return {
    name,
    uid,
    gid,
    run: (argv, opts = {}) => spawnSync('setpriv', asUser(argv), { encoding: 'utf8', timeout: 30_000, ...opts }),
    spawn: (argv, opts = {}) => spawn('setpriv', asUser(argv), opts),
    remove: () => {
      if (removed) return;
      removed = true;
      const del = spawnSync('userdel', [name], { encoding: 'utf8' });
      if (del.status !== 0 && del.status !== 6) throw new Error(`userdel ${name} failed: ${del.stderr}`);
    },
  };
}
