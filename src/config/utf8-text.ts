// Decoding a config file's bytes as UTF-8, strictly: TOML files must be UTF-8, and a lenient
// decode would turn a Latin-1 "é" into U+FFFD and hand that to the worker (issue #14, item 8).
// A leading byte order mark is dropped, as smol-toml and TextDecoder do: TOML does not mention
// one, editors on some systems write it, and it is invisible, so columns on line 1 do not count it.

export type DecodedText =
  | { ok: true; text: string }
  /** `column` counts UTF-16 code units from 1, like smol-toml's and the key locator's columns. */
  | { ok: false; line: number; column: number; badBytes: Uint8Array };

const NEWLINE = 0x0a;

export function decodeUtf8Text(bytes: Uint8Array): DecodedText {
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    // TextDecoder says only that the input is invalid; find where, to point the user at it.
  }
  const bad = firstInvalidSequence(bytes);
  if (bad === null) throw new Error('decodeUtf8Text: TextDecoder rejected bytes that are well-formed UTF-8');
  let line = 1;
  let lineStart = 0;
  for (let index = 0; index < bad.offset; index += 1) {
    if (bytes[index] === NEWLINE) {
      line += 1;
      lineStart = index + 1;
    }
  }
  // Only the file's first line can start with a byte order mark; elsewhere U+FEFF is a character.
  const before = new TextDecoder('utf-8', { ignoreBOM: lineStart !== 0 }).decode(bytes.subarray(lineStart, bad.offset));
  return { ok: false, line, column: before.length + 1, badBytes: bytes.subarray(bad.offset, bad.offset + bad.length) };
}

/**
 * The first ill-formed sequence: its offset and the length of its "maximal subpart" (Unicode
 * §3.9, the lead byte and the continuation bytes that were still possible), so an "é" saved as
 * Latin-1 is reported as the one byte 0xe9, and a truncated character as the bytes it has.
 */
export function firstInvalidSequence(bytes: Uint8Array): { offset: number; length: number } | null {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index]!;
    if (lead < 0x80) {
      index += 1;
      continue;
    }
    const shape = sequenceShape(lead);
    if (shape === null) return { offset: index, length: 1 };
    // Well-formed sequences (Unicode Table 3-7): only the second byte has a narrower range.
    let length = 1;
    while (length < shape.bytes) {
      const byte = bytes[index + length];
      const [low, high] = length === 1 ? [shape.secondLow, shape.secondHigh] : [0x80, 0xbf];
      if (byte === undefined || byte < low || byte > high) return { offset: index, length };
      length += 1;
    }
    index += length;
  }
  return null;
}

interface SequenceShape {
  bytes: number;
  secondLow: number;
  secondHigh: number;
}

/** Length and second-byte range of a sequence starting with `lead`, or null if it cannot lead. */
function sequenceShape(lead: number): SequenceShape | null {
  if (lead >= 0xc2 && lead <= 0xdf) return { bytes: 2, secondLow: 0x80, secondHigh: 0xbf };
  if (lead === 0xe0) return { bytes: 3, secondLow: 0xa0, secondHigh: 0xbf }; // no overlong forms
  if (lead === 0xed) return { bytes: 3, secondLow: 0x80, secondHigh: 0x9f }; // no surrogates
  if (lead >= 0xe1 && lead <= 0xef) return { bytes: 3, secondLow: 0x80, secondHigh: 0xbf };
  if (lead === 0xf0) return { bytes: 4, secondLow: 0x90, secondHigh: 0xbf }; // no overlong forms
  if (lead >= 0xf1 && lead <= 0xf3) return { bytes: 4, secondLow: 0x80, secondHigh: 0xbf };
  if (lead === 0xf4) return { bytes: 4, secondLow: 0x80, secondHigh: 0x8f }; // at most U+10FFFF
  return null; // a continuation byte, an overlong lead (0xc0, 0xc1) or beyond Unicode (0xf5..0xff)
}
