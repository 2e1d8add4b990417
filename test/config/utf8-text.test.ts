// Strict UTF-8 decoding of config files (issue #14, item 8): where the first ill-formed sequence
// is, and which bytes it spans.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeUtf8Text, firstInvalidSequence } from '../../src/config/utf8-text.js';

const bytes = (...parts: Array<string | number[]>): Uint8Array =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part))));

const ILL_FORMED: Array<{ name: string; input: Uint8Array; offset: number; length: number }> = [
  { name: 'a Latin-1 é', input: bytes('caf', [0xe9]), offset: 3, length: 1 },
  { name: 'a lone continuation byte', input: bytes('a', [0x80], 'b'), offset: 1, length: 1 },
  { name: 'an overlong two-byte lead', input: bytes([0xc0, 0xaf]), offset: 0, length: 1 },
  { name: 'an overlong three-byte form', input: bytes([0xe0, 0x80, 0xaf]), offset: 0, length: 1 },
  { name: 'an encoded surrogate', input: bytes([0xed, 0xa0, 0x80]), offset: 0, length: 1 },
  { name: 'a code point above U+10FFFF', input: bytes([0xf4, 0x90, 0x80, 0x80]), offset: 0, length: 1 },
  { name: 'a byte that never occurs in UTF-8', input: bytes('ok ', [0xff]), offset: 3, length: 1 },
  { name: 'a three-byte character cut after two bytes', input: bytes([0xe2, 0x82], 'x'), offset: 0, length: 2 },
  { name: 'a four-byte character cut at the end of the input', input: bytes('é', [0xf0, 0x9f, 0x98]), offset: 2, length: 3 },
];

for (const bad of ILL_FORMED) {
  test(`${bad.name} is the first ill-formed sequence, with its maximal subpart`, () => {
    assert.deepEqual(firstInvalidSequence(bad.input), { offset: bad.offset, length: bad.length });
    assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(bad.input), 'TextDecoder agrees that it is ill-formed');
  });
}

test('well-formed text of every sequence length has no ill-formed sequence', () => {
  const text = 'a \u00e9 \u07ff \u0800 \ud7ff \ue000 \uffff \u{10000} \u{10ffff} \u{1f600}\n';
  assert.equal(firstInvalidSequence(Buffer.from(text, 'utf8')), null);
  assert.deepEqual(decodeUtf8Text(Buffer.from(text, 'utf8')), { ok: true, text });
});

test('the position of a bad byte is its line and its column in characters of that line', () => {
  const decoded = decodeUtf8Text(bytes('project = "p"\n# \u00fcber\nworking_dir = "/home/j', [0xf6], 'rg"\n'));
  assert.equal(decoded.ok, false);
  if (decoded.ok) return;
  assert.deepEqual({ line: decoded.line, column: decoded.column, bad: [...decoded.badBytes] }, { line: 3, column: 23, bad: [0xf6] });
});

test('a byte order mark is dropped, and columns on the first line do not count it', () => {
  assert.deepEqual(decodeUtf8Text(bytes([0xef, 0xbb, 0xbf], 'project = "p"\n')), { ok: true, text: 'project = "p"\n' });
  const decoded = decodeUtf8Text(bytes([0xef, 0xbb, 0xbf], 'x = "', [0xe9], '"\n'));
  assert.deepEqual(decoded.ok ? null : { line: decoded.line, column: decoded.column }, { line: 1, column: 6 });
});

test('U+FEFF at the start of a later line is a character and counts in the column', () => {
  const decoded = decodeUtf8Text(bytes('a = 1\n\ufeff', [0xe9]));
  assert.deepEqual(decoded.ok ? null : { line: decoded.line, column: decoded.column }, { line: 2, column: 2 });
});
