import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  COMMANDS,
  ControlError,
  ERROR_CODES,
  encodeReply,
  encodeRequest,
  errorReply,
  isProtocolFailure,
  okReply,
  parseReply,
  parseRequest,
} from '../../src/control/protocol.js';

function failureOf(line: string): { id: unknown; code: string } {
  const result = parseRequest(line);
  assert.ok(isProtocolFailure(result), `expected a failure for ${line}`);
  return { id: result.id, code: result.code };
}

describe('parseRequest', () => {
  it('accepts every command and defaults args to an empty object', () => {
    for (const cmd of COMMANDS) {
      const result = parseRequest(JSON.stringify({ v: 1, id: 7, cmd }));
      assert.deepEqual(result, { v: 1, id: 7, cmd, args: {} });
    }
  });

  it('keeps any JSON value as id, including null, and passes args through', () => {
    for (const id of [null, 0, 'a', [1, { b: 2 }], { nested: true }, false]) {
      const result = parseRequest(JSON.stringify({ v: 1, id, cmd: 'status', args: { verbose: true } }));
      assert.deepEqual(result, { v: 1, id, cmd: 'status', args: { verbose: true } });
    }
  });

  it('ignores unknown top-level fields for forward compatibility', () => {
    const result = parseRequest('{"v":1,"id":1,"cmd":"reload","trace":"x"}');
    assert.deepEqual(result, { v: 1, id: 1, cmd: 'reload', args: {} });
  });

  it('reports invalid JSON as bad_json with a null id', () => {
    assert.deepEqual(failureOf('{"v":1,"id":5,'), { id: null, code: 'bad_json' });
    assert.deepEqual(failureOf(''), { id: null, code: 'bad_json' });
  });

  it('reports non-object requests as bad_request', () => {
    for (const line of ['[]', '1', '"status"', 'null', '[{"v":1,"id":1,"cmd":"status"}]']) {
      assert.deepEqual(failureOf(line), { id: null, code: 'bad_request' }, line);
    }
  });

  it('reports a version other than 1 as unsupported_version and echoes the id', () => {
    assert.deepEqual(failureOf('{"v":2,"id":"x","cmd":"status"}'), { id: 'x', code: 'unsupported_version' });
    assert.deepEqual(failureOf('{"v":"1","id":3,"cmd":"status"}'), { id: 3, code: 'unsupported_version' });
    assert.deepEqual(failureOf('{"id":4,"cmd":"status"}'), { id: 4, code: 'unsupported_version' });
  });

  it('reports a missing id, a non-string cmd and non-object args as bad_request', () => {
    assert.deepEqual(failureOf('{"v":1,"cmd":"status"}'), { id: null, code: 'bad_request' });
    assert.deepEqual(failureOf('{"v":1,"id":1,"cmd":5}'), { id: 1, code: 'bad_request' });
    assert.deepEqual(failureOf('{"v":1,"id":1}'), { id: 1, code: 'bad_request' });
    assert.deepEqual(failureOf('{"v":1,"id":1,"cmd":"status","args":[1]}'), { id: 1, code: 'bad_request' });
    assert.deepEqual(failureOf('{"v":1,"id":1,"cmd":"status","args":null}'), { id: 1, code: 'bad_request' });
  });

  it('reports an unknown command as unknown_command and echoes the id', () => {
    assert.deepEqual(failureOf('{"v":1,"id":9,"cmd":"rm -rf"}'), { id: 9, code: 'unknown_command' });
    // Prototype names must not pass as commands.
    assert.deepEqual(failureOf('{"v":1,"id":9,"cmd":"constructor"}'), { id: 9, code: 'unknown_command' });
  });

  it('keeps error messages short even for huge bad values', () => {
    const result = parseRequest(JSON.stringify({ v: 1, id: 1, cmd: 'x'.repeat(10_000) }));
    assert.ok(isProtocolFailure(result));
    assert.ok(result.message.length < 300, `message is ${result.message.length} chars`);
  });
});

describe('encodeReply', () => {
  it('writes one line that parses back to the same reply', () => {
    const ok = okReply({ a: 1 }, { worker: { state: 'running' } });
    const line = encodeReply(ok);
    assert.ok(line.endsWith('\n'));
    assert.equal(line.indexOf('\n'), line.length - 1);
    assert.deepEqual(JSON.parse(line), ok);
    assert.deepEqual(parseReply(line.trimEnd()), ok);
    const err = errorReply('z', 'busy', 'later');
    assert.deepEqual(parseReply(encodeReply(err).trimEnd()), err);
  });

  it('keeps the data key when the handler returned undefined', () => {
    assert.deepEqual(JSON.parse(encodeReply(okReply(1, undefined))), { v: 1, id: 1, ok: true, data: {} });
  });

  it('turns data JSON cannot encode into an internal error reply with the same id', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const data of [{ big: 10n }, cyclic]) {
      const reply = JSON.parse(encodeReply(okReply(42, data)));
      assert.equal(reply.ok, false);
      assert.equal(reply.id, 42);
      assert.equal(reply.error.code, 'internal');
      assert.match(reply.error.message, /not JSON-encodable/);
    }
  });

  it('escapes newlines inside strings so a reply is always a single line', () => {
    const line = encodeReply(okReply('a\nb', { text: 'x\ny\r\n' }));
    assert.equal(line.split('\n').length, 2);
  });
});

describe('encodeRequest and parseReply', () => {
  it('produce a request the parser accepts', () => {
    const line = encodeRequest(3, 'stop-worker', { force: true });
    assert.deepEqual(parseRequest(line), { v: 1, id: 3, cmd: 'stop-worker', args: { force: true } });
  });

  it('rejects malformed replies', () => {
    for (const line of ['nope', '{"v":1,"id":1}', '{"v":2,"id":1,"ok":true}', '{"v":1,"id":1,"ok":false,"error":"x"}']) {
      assert.ok(isProtocolFailure(parseReply(line)), line);
    }
  });
});

describe('ControlError', () => {
  it('is an Error carrying a code', () => {
    const err = new ControlError('not_running', 'no worker');
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'not_running');
    assert.equal(err.name, 'ControlError');
  });

  it('has all error codes the daemon and CLI rely on', () => {
    for (const code of ['bad_json', 'bad_request', 'unsupported_version', 'unknown_command', 'line_too_long',
      'busy', 'timeout', 'internal', 'not_running', 'invalid_config', 'shutting_down']) {
      assert.ok((ERROR_CODES as readonly string[]).includes(code), code);
    }
  });
});

describe('protocol module', () => {
  it('imports no node: module, so it stays pure', () => {
    const source = readFileSync(fileURLToPath(new URL('../../../src/control/protocol.ts', import.meta.url)), 'utf8');
    assert.doesNotMatch(source, /from\s+['"]node:/);
    assert.doesNotMatch(source, /^import\s/m);
  });
});
