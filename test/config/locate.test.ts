// KeyLocator: keys found by line and column in the kinds of TOML a config file holds.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'smol-toml';
import { KeyLocator, keyAtPosition } from '../../src/config/locate.js';

const SOURCE = [
  '# [memory] in a comment = 1', //          1
  'project = "p" # trailing = comment', //   2
  '"quoted key" = 1', //                      3
  'a.b.c = 2', //                             4
  '', //                                      5
  '[worker]', //                              6
  'command = [', //                           7
  '  "node", # a comment with [brackets]', // 8
  '  "x = y",', //                            9
  ']', //                                     10
  "  env = { A = '1', 'B.C' = \"2\", N = { M = 3 } }", // 11
  'text = """', //                            12
  'poll_interval_ms = 1', //                  13
  '[memory]', //                              14
  '"""', //                                   15
  'multi = """ends with quotes"""""', //     16
  'lit = \'\'\'', //                          17
  '[restart]', //                             18
  "'''", //                                   19
  'escaped = "a \\" [memory] b"', //           20
  '[ memory . "sub" ]', //                    21
  'poll_interval_ms = 5', //                  22
  'when = 1979-05-27 07:32:00Z', //           23
  'after_date = 1', //                        24
  'inline = { x = [1, { y = 2 }], z = 3 }', // 25
  '[[jobs]]', //                              26
  'name = "j"', //                            27
  '',
].join('\n');

test('the sample document is valid TOML, so the locator sees what smol-toml accepts', () => {
  assert.doesNotThrow(() => parse(SOURCE));
});

const EXPECTED: Array<[string[], number, number]> = [
  [['project'], 2, 1],
  [['quoted key'], 3, 1],
  [['a', 'b', 'c'], 4, 1],
  [['worker'], 6, 1],
  [['worker', 'command'], 7, 1],
  [['worker', 'env'], 11, 3],
  [['worker', 'env', 'A'], 11, 11],
  [['worker', 'env', 'B.C'], 11, 20],
  [['worker', 'env', 'N'], 11, 33],
  [['worker', 'env', 'N', 'M'], 11, 39],
  [['worker', 'text'], 12, 1],
  [['worker', 'multi'], 16, 1],
  [['worker', 'lit'], 17, 1],
  [['worker', 'escaped'], 20, 1],
  [['memory', 'sub'], 21, 1],
  [['memory', 'sub', 'poll_interval_ms'], 22, 1],
  [['memory', 'sub', 'when'], 23, 1],
  [['memory', 'sub', 'after_date'], 24, 1],
  [['memory', 'sub', 'inline', 'z'], 25, 32],
  [['jobs', 'name'], 27, 1],
];

for (const [path, line, column] of EXPECTED) {
  test(`the key ${path.join('.')} is found at ${line}:${column}`, () => {
    assert.deepEqual(new KeyLocator(SOURCE).find(path), { line, column });
  });
}

test('keys inside strings and comments are not taken for keys', () => {
  const locator = new KeyLocator(SOURCE);
  assert.deepEqual(locator.find(['worker', 'poll_interval_ms']), { line: 6, column: 1 }, 'falls back to [worker]');
  assert.deepEqual(locator.find(['restart']), undefined);
  assert.deepEqual(locator.find(['memory']), { line: 21, column: 1 }, 'a table defined only by a sub-table header');
});

test('a table made only of dotted keys is found at its first key', () => {
  assert.deepEqual(new KeyLocator('x = 1\n\nmemory.a = 1\nmemory.b = 2\n').find(['memory']), { line: 3, column: 1 });
});

test('an unknown key falls back to its nearest located ancestor', () => {
  assert.deepEqual(new KeyLocator('[memory]\na = 1\n').find(['memory', 'nope', 'deeper']), { line: 1, column: 1 });
  assert.equal(new KeyLocator('a = 1\n').find(['nope']), undefined);
});

test('CRLF line endings count lines the same way', () => {
  assert.deepEqual(new KeyLocator('a = 1\r\n[memory]\r\nb = 2\r\n').find(['memory', 'b']), { line: 3, column: 1 });
});

test('keyAtPosition names the key of a position in text that does not parse', () => {
  const text = [
    'project = "p',                         // 1: unterminated string
    '[memory',                              // 2: unclosed header
    'poll_interval_ms =',                   // 3: missing value
    '[worker]',                             // 4
    'env = { A = "x", "B c" = "caf\uFFFD" }', // 5: a bad byte inside an inline table
    '# only a comment',                     // 6
    '"quoted.key" = 1',                     // 7
    'a.b = { c = { d = 1 } }',              // 8
  ].join('\n');
  assert.equal(keyAtPosition(text, 1, 11), 'project');
  assert.equal(keyAtPosition(text, 2, 8), 'memory');
  assert.equal(keyAtPosition(text, 3, 19), 'memory.poll_interval_ms');
  assert.equal(keyAtPosition(text, 5, 30), 'worker.env.B c');
  assert.equal(keyAtPosition(text, 5, 14), 'worker.env.A');
  assert.equal(keyAtPosition(text, 5, 1), 'worker.env', 'before any key on the line: the line\'s first key');
  assert.equal(keyAtPosition(text, 6, 3), null, 'a comment names no key');
  assert.equal(keyAtPosition(text, 7, 16), 'worker.quoted.key');
  assert.equal(keyAtPosition(text, 8, 20), 'worker.a.b.c.d');
  assert.equal(keyAtPosition(text, 99, 1), null, 'past the end');
});
