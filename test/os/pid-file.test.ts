import assert from 'node:assert/strict';
import { spawn,  } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  instanceRecordPath,
  readInstanceRecord,
  readPidFile,
  removeInstanceRecord,
  removePidFile,
  writeInstanceRecord,
  writePidFile,
  type InstanceRecord,
} from '../../src/os/pid-file.js';
import { scratchArea } from '../helpers/scratch.js';

const PID_FILE_MODULE = new URL('../../src/os/pid-file.js', import.meta.url).href;
const { freshDir, track } = scratchArea('autopilotd-pid-test-');

const record: InstanceRecord = {
  pid: 4242,
  instance_id: 'a1b2c3',
  started_at: '2025-01-02T03:04:05.678Z',
  socket_path: '/run/user/1000/autopilotd/autopilotd.sock',
  config_path: '/home/u/.autopilot/daemon.toml',
  start_ticks: 123456,
};

/**
 * Runs `writes` atomic rewrites in a child process while this process reads the file in a tight
 * loop; returns every distinct content the reader saw. The writer alternates two values of
 * different lengths, so a torn write would show up as a third content (empty, cut or mixed).
 */
async function readWhileAnotherProcessRewrites(path: string, writerBody: string, writes: number): Promise<Set<string>> {
  const donePath = `${path}.done`;
  const script = `
    const m = await import(process.env.PID_FILE_MODULE);
    const path = process.env.TARGET;
    for (let i = 0; i < ${writes}; i += 1) { ${writerBody} }
    (await import('node:fs')).writeFileSync(process.env.DONE, '');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, PID_FILE_MODULE, TARGET: path, DONE: donePath },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  track(child);
  const exited = once(child, 'exit');
  const seen = new Set<string>();
  const deadline = Date.now() + 20_000;
  // Synchronous on purpose: as many reads as possible while the writer runs.
  while (!existsSync(donePath)) {
    if (Date.now() > deadline) throw new Error('timed out after 20000 ms waiting for the writer process to finish');
    seen.add(readFileSync(path, 'utf8'));
  }
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, 'writer process failed');
  return seen;
}

test('writePidFile writes "<pid>\\n" with mode 0600 whatever the umask, and leaves no temp file', () => {
  const dir = freshDir();
  const path = join(dir, 'autopilotd.pid');
  const previousUmask = process.umask(0);
  try {
    writePidFile(path, 1234);
  } finally {
    process.umask(previousUmask);
  }
  assert.equal(readFileSync(path, 'utf8'), '1234\n');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  writePidFile(path, 56);
  assert.equal(readFileSync(path, 'utf8'), '56\n');
  assert.deepEqual(readdirSync(dir), ['autopilotd.pid']);
});

test('writePidFile into a missing directory throws naming the path and errno, and leaves nothing behind', () => {
  const dir = freshDir();
  const path = join(dir, 'missing', 'autopilotd.pid');
  assert.throws(() => writePidFile(path, 1234), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ENOENT');
    assert.ok(err.message.includes(join(dir, 'missing')), err.message);
    return true;
  });
  assert.deepEqual(readdirSync(dir), []);
});

test('writePidFile refuses something that is not a PID', () => {
  const path = join(freshDir(), 'autopilotd.pid');
  for (const pid of [0, -1, 1.5, Number.NaN]) assert.throws(() => writePidFile(path, pid), RangeError);
  assert.equal(existsSync(path), false);
});

test('a reader never sees the PID file partially written while another process rewrites it', async () => {
  const path = join(freshDir(), 'autopilotd.pid');
  writePidFile(path, 7);
  const seen = await readWhileAnotherProcessRewrites(path, 'm.writePidFile(path, i % 2 === 0 ? 4194304 : 7);', 300);
  for (const content of seen) assert.ok(content === '7\n' || content === '4194304\n', `torn read: ${JSON.stringify(content)}`);
  assert.ok(seen.has('4194304\n'), 'the reader never saw the rewritten value, so the test did not race');
});

test('readPidFile returns null for a missing file and for contents that are not a PID', () => {
  const path = join(freshDir(), 'autopilotd.pid');
  assert.equal(readPidFile(path), null);
  for (const garbage of ['', '\n', 'abc\n', '-5\n', '0\n', '012\n', '12abc\n', '1.5\n', '4194305\n', '99999999999\n', '\u0000\u0001', '12\n34\n']) {
    writeFileSync(path, garbage);
    assert.equal(readPidFile(path), null, `content ${JSON.stringify(garbage)}`);
  }
  writeFileSync(path, '4242');
  assert.equal(readPidFile(path), 4242, 'a missing trailing newline is still a PID');
  writeFileSync(path, '4194304\n');
  assert.equal(readPidFile(path), 4194304);
});

test('readPidFile throws, naming the path, when the file exists but cannot be read', () => {
  const path = join(freshDir(), 'autopilotd.pid');
  mkdirSync(path);
  assert.throws(() => readPidFile(path), (err: NodeJS.ErrnoException) => err.code === 'EISDIR' && err.message.includes(path));
});

test('removePidFile removes the file only while it still holds our PID', () => {
  const path = join(freshDir(), 'autopilotd.pid');
  assert.equal(removePidFile(path, 100), false, 'missing file');
  writePidFile(path, 200);
  assert.equal(removePidFile(path, 100), false, 'another daemon owns it');
  assert.equal(readPidFile(path), 200);
  writeFileSync(path, 'garbage\n');
  assert.equal(removePidFile(path, 100), false, 'garbage is not ours');
  assert.equal(readFileSync(path, 'utf8'), 'garbage\n');
  writePidFile(path, 100);
  assert.equal(removePidFile(path, 100), true);
  assert.equal(existsSync(path), false);
});

test('the instance record lives beside the PID file and round-trips', () => {
  const dir = freshDir();
  const pidFile = join(dir, 'autopilotd.pid');
  assert.equal(instanceRecordPath(pidFile), `${pidFile}.instance`);
  assert.equal(readInstanceRecord(pidFile), null);
  writeInstanceRecord(pidFile, { ...record, config_path: null });
  assert.deepEqual(readInstanceRecord(pidFile), { ...record, config_path: null });
  writeInstanceRecord(pidFile, record);
  assert.deepEqual(JSON.parse(readFileSync(`${pidFile}.instance`, 'utf8')), record);
  assert.deepEqual(readInstanceRecord(pidFile), record);
  assert.equal(statSync(`${pidFile}.instance`).mode & 0o777, 0o600, 'issue #14: the instance id is nobody else\'s to read');
  assert.deepEqual(readdirSync(dir), ['autopilotd.pid.instance']);
});

test('readInstanceRecord treats a torn or malformed record as stale (null)', () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  const malformed = [
    '',
    '{"pid": 1',
    'null',
    '[]',
    JSON.stringify({ ...record, pid: 0 }),
    JSON.stringify({ ...record, instance_id: '' }),
    JSON.stringify({ ...record, started_at: 'yesterday' }),
    JSON.stringify({ ...record, socket_path: 'relative.sock' }),
    JSON.stringify({ ...record, config_path: 7 }),
    JSON.stringify({ ...record, start_ticks: -1 }),
    JSON.stringify({ ...record, start_ticks: '123456' }),
  ];
  for (const text of malformed) {
    writeFileSync(`${pidFile}.instance`, text);
    assert.equal(readInstanceRecord(pidFile), null, `content ${text}`);
  }
});

test('a record from before socket_path and config_path existed still reads, with both unknown', () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  const { socket_path: _s, config_path: _c, ...old } = record;
  writeFileSync(`${pidFile}.instance`, JSON.stringify(old));
  assert.deepEqual(readInstanceRecord(pidFile), { ...record, socket_path: null, config_path: null });
});

test('a record from before start_ticks existed still reads, with it unknown', () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  const { start_ticks: _t, ...old } = record;
  writeFileSync(`${pidFile}.instance`, JSON.stringify(old));
  assert.deepEqual(readInstanceRecord(pidFile), { ...record, start_ticks: null });
});

test('a record from before issue #14 with a worker field reads without it', () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  writeFileSync(`${pidFile}.instance`, JSON.stringify({ ...record, worker: { pid: 4300, pgid: 4300, generation: 3 } }));
  assert.deepEqual(readInstanceRecord(pidFile), record);
});

test('a record or PID file that is a symbolic link is not read through, and writing replaces the link, not its target (issue #14)', () => {
  const dir = freshDir();
  const pidFile = join(dir, 'autopilotd.pid');
  writeFileSync(join(dir, 'elsewhere'), JSON.stringify(record));
  symlinkSync(join(dir, 'elsewhere'), `${pidFile}.instance`);
  writeFileSync(join(dir, 'pid-elsewhere'), '4242\n');
  symlinkSync(join(dir, 'pid-elsewhere'), pidFile);
  const ignored: string[] = [];
  assert.equal(readInstanceRecord(pidFile, (reason) => ignored.push(reason)), null);
  assert.deepEqual(ignored, [`${pidFile}.instance is a symbolic link to ${join(dir, 'elsewhere')}`]);
  assert.equal(readPidFile(pidFile), null);
  assert.equal(removePidFile(pidFile, 4242), false, 'a link is not our PID file');

  writePidFile(pidFile, 7);
  writeInstanceRecord(pidFile, record);
  assert.equal(lstatSync(pidFile).isFile(), true);
  assert.equal(readFileSync(join(dir, 'pid-elsewhere'), 'utf8'), '4242\n');
  assert.equal(readFileSync(join(dir, 'elsewhere'), 'utf8'), JSON.stringify(record));
  assert.deepEqual(readInstanceRecord(pidFile), record);
});

test('a record another user owns is ignored, naming why, and not removed (issue #14)', { skip: process.getuid?.() !== 0 ? 'needs root to chown to another user' : false }, () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  writeFileSync(`${pidFile}.instance`, JSON.stringify(record));
  chmodSync(`${pidFile}.instance`, 0o644);
  chownSync(`${pidFile}.instance`, 65534, 65534);
  const ignored: string[] = [];
  assert.equal(readInstanceRecord(pidFile, (reason) => ignored.push(reason)), null);
  assert.deepEqual(ignored, [`${pidFile}.instance is owned by uid 65534 (regular file, mode 0644)`]);
  assert.equal(removeInstanceRecord(pidFile, record.instance_id), false);
  assert.equal(existsSync(`${pidFile}.instance`), true);
});

test('writeInstanceRecord refuses a malformed record', () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  assert.throws(() => writeInstanceRecord(pidFile, { ...record, pid: -1 }), TypeError);
  assert.equal(existsSync(`${pidFile}.instance`), false);
});

test('removeInstanceRecord removes the record only when it belongs to our instance', () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  assert.equal(removeInstanceRecord(pidFile, record.instance_id), false, 'missing record');
  writeInstanceRecord(pidFile, record);
  assert.equal(removeInstanceRecord(pidFile, 'someone-else'), false);
  assert.deepEqual(readInstanceRecord(pidFile), record);
  assert.equal(removeInstanceRecord(pidFile, record.instance_id), true);
  assert.equal(existsSync(`${pidFile}.instance`), false);
});

test('a reader never sees the instance record partially written while another process rewrites it', async () => {
  const pidFile = join(freshDir(), 'autopilotd.pid');
  writeInstanceRecord(pidFile, { ...record, config_path: null });
  const seen = await readWhileAnotherProcessRewrites(
    `${pidFile}.instance`,
    `m.writeInstanceRecord(${JSON.stringify(pidFile)}, ${JSON.stringify({ ...record, config_path: null })});
     m.writeInstanceRecord(${JSON.stringify(pidFile)}, ${JSON.stringify(record)});`,
    150,
  );
  for (const content of seen) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch {
      assert.fail(`torn read: ${JSON.stringify(content)}`);
    }
    assert.ok(
      [JSON.stringify({ ...record, config_path: null }), JSON.stringify(record)].includes(JSON.stringify(parsed)),
      `unexpected record ${content}`,
    );
  }
  assert.equal(seen.size, 2, `the reader saw ${seen.size} distinct record(s), so the test did not race`);
});
