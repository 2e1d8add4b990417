// Log text bound for a terminal. Worker output is anybody's bytes: printed raw, an ESC starts a
// sequence that recolours, moves the cursor or retitles the window, and a CR returns to the start
// of the line so that what follows overwrites it, e.g. with a fake "ERROR" (issue #14, item 8).
// Only what goes to a terminal is escaped; files, pipes and journald get the text unchanged.

// C0 controls but TAB and LF, DEL, and the C1 controls (U+0080..U+009F, which some terminals
// take as 8-bit CSI and friends).
const HAS_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
const CONTROL = new RegExp(HAS_CONTROL.source, 'g');

/**
 * `text` with every control character but TAB and LF written as a visible escape: `\r`, `\xHH`
 * (C0 and DEL), `\u00HH` (C1). Backslashes are left alone: the escapes are for reading, not for
 * decoding back, and doubling every backslash of a path or regex in the output would hurt more.
 */
export function escapeForTerminal(text: string): string {
  // Most lines have none: one scan, no copy.
  if (!HAS_CONTROL.test(text)) return text;
  return text.replace(CONTROL, escapeOne);
}

function escapeOne(char: string): string {
  if (char === '\r') return '\\r';
  const code = char.charCodeAt(0);
  const hex = code.toString(16).padStart(2, '0');
  return code < 0x80 ? `\\x${hex}` : `\\u00${hex}`;
}
