// The [metrics] section: `listen` is off by default; a bare port means 127.0.0.1, any other address
// must be written out (an IP literal or localhost, never a name to look up); a bad value is a
// problem naming file:line:column and the key, from the file or the environment.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatListenAddress, parseListenAddress } from '../../src/config/listen-address.js';
import { loadHome, makeTempHome, problemsOfHome } from './temp-home.js';

test('metrics are not served by default', (t) => {
  assert.deepEqual(loadHome(makeTempHome(t)).config.metrics, { listen: null });
});

test('listen addresses: a bare port is loopback; an explicit host is bound as written', () => {
  const cases: [string, string | null][] = [
    ['9464', '127.0.0.1:9464'],
    ['127.0.0.1:9464', '127.0.0.1:9464'],
    ['localhost:9464', '127.0.0.1:9464'],
    ['0.0.0.0:9464', '0.0.0.0:9464'],
    ['192.168.1.20:1', '192.168.1.20:1'],
    ['[::1]:9464', '[::1]:9464'],
    ['[::]:65535', '[::]:65535'],
    ['', null],
    ['0', null],
    ['65536', null],
    ['127.0.0.1:0', null],
    ['127.0.0.1', null],
    [':9464', null],
    ['*:9464', null],
    ['example.com:9464', null],
    ['::1:9464', null],
    ['[127.0.0.1]:9464', null],
    ['127.0.0.1:9464 ', null],
    ['http://127.0.0.1:9464', null],
    ['127.0.0.1:+9464', null],
    ['999999', null],
  ];
  for (const [text, expected] of cases) {
    const parsed = parseListenAddress(text);
    assert.equal(parsed === null ? null : formatListenAddress(parsed), expected, JSON.stringify(text));
  }
});

test('[metrics].listen loads from the file and from AUTOPILOTD_METRICS_LISTEN', (t) => {
  const home = makeTempHome(t);
  const file = home.write('.autopilot/daemon.toml', '[metrics]\nlisten = "127.0.0.1:9464"\n');
  const loaded = loadHome(home);
  assert.equal(loaded.config.metrics.listen, '127.0.0.1:9464');
  assert.deepEqual(loaded.sources['metrics.listen'], { kind: 'file', path: file, line: 2 });
  assert.equal(loadHome(home, { AUTOPILOTD_METRICS_LISTEN: '9100' }).config.metrics.listen, '9100');
});

test('a bad listen value names the file, line, column and key, and what is allowed', (t) => {
  const home = makeTempHome(t);
  const file = home.write('.autopilot/daemon.toml', '[metrics]\nlisten = "example.com:9464"\n');
  const [problem, ...rest] = problemsOfHome(home);
  assert.deepEqual(rest, []);
  assert.ok(problem!.startsWith(`${file}:2:`), problem);
  assert.match(problem!, / metrics\.listen: expected an address "HOST:PORT" or a port "PORT" \(HOST an IPv4 address, \[IPv6\] or localhost; PORT 1\.\.65535; a bare port listens on 127\.0\.0\.1 only\), got "example\.com:9464"/);
  home.write('.autopilot/daemon.toml', '[metrics]\nlisten = 9464\n');
  assert.match(problemsOfHome(home)[0]!, /:2:\d+: metrics\.listen: expected an address .* got 9464/);
  home.write('.autopilot/daemon.toml', '');
  assert.match(problemsOfHome(home, { AUTOPILOTD_METRICS_LISTEN: '70000' })[0]!, /^environment AUTOPILOTD_METRICS_LISTEN: metrics\.listen: expected an address/);
});
