// The unit text (#16) as a pure function: ExecStart quoting, %h for home paths, the template's
// instance, the NotifyAccess choice, timeouts from the stop grace; the repository's copies.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { execArg, repoUnitText, unitFileName, unitText, type UnitInput } from '../../src/cli/service-unit.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const BASE: UnitInput = {
  nodePath: '/opt/node/bin/node',
  scriptPath: '/opt/apd/dist/bin/autopilotd.cjs',
  template: false,
  configPath: null,
  notifyAccess: 'main',
  stopTimeoutMs: 10_000,
  homeDir: '/home/me',
};

const directives = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
const execStart = (text: string): string => directives(text).find((l) => l.startsWith('ExecStart='))!;

test('the plain unit: notify with watchdog, the daemon V8 flags, and no MemoryMax', () => {
  const text = unitText(BASE);
  assert.equal(execStart(text), 'ExecStart=/opt/node/bin/node --lite-mode --no-expose-wasm --max-semi-space-size=1 --gc-memory-reducer-start-delay-ms=200 /opt/apd/dist/bin/autopilotd.cjs start --foreground');
  const lines = directives(text);
  for (const line of ['Type=notify', 'NotifyAccess=main', 'ExecReload=/bin/kill -HUP $MAINPID', 'Restart=always', 'RestartSec=10', 'WatchdogSec=30',
    'TimeoutStopSec=25', 'KillMode=mixed', 'OOMPolicy=continue', 'Delegate=yes', 'EnvironmentFile=-%h/.autopilot/env', 'StandardOutput=journal',
    'StandardError=journal', 'NoNewPrivileges=yes', 'LockPersonality=yes', 'RestrictSUIDSGID=yes', 'WantedBy=default.target']) {
    assert.ok(lines.includes(line), `${line} in\n${text}`);
  }
  assert.ok(!lines.some((l) => /^Memory(Max|High)=/.test(l)), 'no memory limit on the service');
  assert.match(text, /^# No MemoryMax=: the worker shares this cgroup, and Claude Code alone passes 512 MiB/m);
  // Options that would break an agent that edits code, runs builds or runs node (V8's JIT).
  for (const left of ['MemoryDenyWriteExecute', 'ProtectHome', 'ProtectSystem', 'PrivateTmp', 'RestrictNamespaces', 'PrivateNetwork']) {
    assert.ok(!lines.some((l) => l.startsWith(`${left}=`)), left);
  }
  assert.deepEqual(text.match(/^\[\w+\]$/gm), ['[Unit]', '[Service]', '[Install]']);
});

test('the stop timeout exceeds the worker stop grace by the margin `autopilotd stop` allows', () => {
  const lines = directives(unitText({ ...BASE, stopTimeoutMs: 60_000 }));
  assert.ok(lines.includes('TimeoutStopSec=75'));
  assert.ok(lines.includes('TimeoutStartSec=90'));
  assert.ok(directives(unitText({ ...BASE, stopTimeoutMs: 1_500 })).includes('TimeoutStopSec=17'), 'rounded up');
});

test('the template runs one daemon per instance: --instance %i, its own env file and identifier', () => {
  const text = unitText({ ...BASE, template: true });
  assert.equal(execStart(text), 'ExecStart=/opt/node/bin/node --lite-mode --no-expose-wasm --max-semi-space-size=1 --gc-memory-reducer-start-delay-ms=200 /opt/apd/dist/bin/autopilotd.cjs start --foreground --instance %i');
  const lines = directives(text);
  assert.ok(lines.includes('EnvironmentFile=-%h/.autopilot/env') && lines.includes('EnvironmentFile=-%h/.autopilot/%i.env'));
  assert.ok(lines.includes('SyslogIdentifier=autopilotd@%i'));
  assert.equal(unitFileName(true), 'autopilotd@.service');
  assert.equal(unitFileName(false), 'autopilotd.service');
});

test('without the native addon the unit says NotifyAccess=all, for the systemd-notify child', () => {
  assert.ok(directives(unitText({ ...BASE, notifyAccess: 'all' })).includes('NotifyAccess=all'));
});

test('paths in the home directory are written as %h; an explicit config file is passed on', () => {
  const text = unitText({ ...BASE, nodePath: '/home/me/.nvm/versions/node/v20.1.0/bin/node', scriptPath: '/home/me/apd/dist/bin/autopilotd.cjs', configPath: '/home/me/agents/a.toml' });
  assert.equal(execStart(text), 'ExecStart=%h/.nvm/versions/node/v20.1.0/bin/node --lite-mode --no-expose-wasm --max-semi-space-size=1 --gc-memory-reducer-start-delay-ms=200 %h/apd/dist/bin/autopilotd.cjs start --foreground --config %h/agents/a.toml');
  assert.ok(!text.includes('/home/me'), text);
  assert.ok(!execStart(unitText({ ...BASE, homeDir: '/home/m', nodePath: '/home/me/node' })).includes('%h'), 'a sibling of the home is not in it');
});

test('ExecStart arguments: specifiers and variables doubled, spaces and quotes quoted', () => {
  assert.equal(execArg('/usr/bin/node'), '/usr/bin/node');
  assert.equal(execArg('%h/x'), '%h/x');
  assert.equal(execArg('/opt/50%/node'), '/opt/50%%/node');
  assert.equal(execArg('/opt/$HOME/node'), '"/opt/$$HOME/node"');
  assert.equal(execArg('/opt/my tools/node'), '"/opt/my tools/node"');
  assert.equal(execArg('/opt/a"b\\c'), '"/opt/a\\"b\\\\c"');
  assert.equal(execArg("/opt/it's"), '"/opt/it\'s"');
  assert.throws(() => execArg('/opt/a\nb'), /cannot write/);
});

test('systemd/ in the repository holds the units for a global install (node scripts/write-units.mjs rewrites them)', () => {
  for (const template of [false, true]) {
    const file = join(REPO_ROOT, 'systemd', unitFileName(template));
    assert.equal(readFileSync(file, 'utf8'), repoUnitText(template), `${file} differs from src/cli/service-unit.ts: npm run build && node scripts/write-units.mjs`);
  }
  assert.match(repoUnitText(false), /^ExecStart=\/usr\/bin\/node --lite-mode --no-expose-wasm --max-semi-space-size=1 --gc-memory-reducer-start-delay-ms=200 \/usr\/lib\/node_modules\/autopilotd\/dist\/bin\/autopilotd\.cjs start --foreground$/m);
});
