// Escaping log text for a terminal (issue #14, item 8): every control character a terminal acts
// on becomes a visible escape; tab, newline and all printable text stay as they are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeForTerminal } from '../../src/log/terminal-text.js';

const CASES: Array<[what: string, input: string, shown: string]> = [
  ['plain text', 'worker[1] compiling crate foo v0.1.0', 'worker[1] compiling crate foo v0.1.0'],
  ['tab and newline', 'a\tb\nc', 'a\tb\nc'],
  ['a CR that would overwrite the line with a fake error', 'ok\r2026-01-01T00:00:00.000Z ERROR fake', 'ok\\r2026-01-01T00:00:00.000Z ERROR fake'],
  ['a colour sequence', '\x1b[31mred\x1b[0m', '\\x1b[31mred\\x1b[0m'],
  ['a window title sequence ended by BEL', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
  ['NUL, backspace, vertical tab, form feed', '\0\b\v\f', '\\x00\\x08\\x0b\\x0c'],
  ['DEL', 'x\x7fy', 'x\\x7fy'],
  ['C1 controls, including 8-bit CSI', '\u0085\u009b31m\u0080', '\\u0085\\u009b31m\\u0080'],
  ['printable text just outside the control ranges', ' ~\u00a0\u00e9\u2028\u{1f600}\ufffd', ' ~\u00a0\u00e9\u2028\u{1f600}\ufffd'],
  ['backslashes', 'C:\\path\\x1b', 'C:\\path\\x1b'],
];

for (const [what, input, shown] of CASES) {
  test(`escapeForTerminal: ${what}`, () => {
    assert.equal(escapeForTerminal(input), shown);
  });
}

test('escapeForTerminal leaves no character below U+0020 but TAB and LF, none in U+007F..U+009F', () => {
  let all = '';
  for (let code = 0; code <= 0xff; code += 1) all += String.fromCharCode(code);
  const shown = escapeForTerminal(all);
  assert.doesNotMatch(shown, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  assert.ok(shown.includes('\t\n'), 'TAB and LF kept');
  assert.ok(shown.includes(' !"#'), 'printable ASCII kept');
});
