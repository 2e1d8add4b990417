// Finds the line and column of each key in a TOML source, so that problems can point at them.
// A locator, not a parser: it runs only on text smol-toml already accepted, and it only has to
// know enough TOML to tell keys from values ([table] headers, dotted and quoted keys, inline
// tables, multi-line arrays and strings, comments).

export interface SourcePosition {
  line: number;
  column: number;
}

export class KeyLocator {
  private readonly positions = new Map<string, SourcePosition>();

  constructor(source: string) {
    new Scanner(source, (path, at) => {
      const id = pathId(path);
      if (!this.positions.has(id)) this.positions.set(id, at);
    }).scanDocument();
  }

  /**
   * Position of the key, else of its first located descendant (a table made only of dotted keys
   * has no line of its own), else of its nearest located ancestor.
   */
  find(path: readonly string[]): SourcePosition | undefined {
    for (let length = path.length; length > 0; length--) {
      const id = pathId(path.slice(0, length));
      const exact = this.positions.get(id);
      if (exact !== undefined) return exact;
      if (length === path.length) {
        const descendant = this.firstUnder(id);
        if (descendant !== undefined) return descendant;
      }
    }
    return undefined;
  }

  private firstUnder(id: string): SourcePosition | undefined {
    let first: SourcePosition | undefined;
    for (const [candidate, at] of this.positions) {
      if (!candidate.startsWith(`${id}\u0000`)) continue;
      if (first === undefined || at.line < first.line || (at.line === first.line && at.column < first.column)) first = at;
    }
    return first;
  }
}

// NUL cannot occur in a TOML key, so it separates path parts without ambiguity.
function pathId(path: readonly string[]): string {
  return path.join('\u0000');
}

class Scanner {
  private i = 0;
  private line = 1;
  private lineStart = 0;

  constructor(
    private readonly text: string,
    private readonly record: (path: string[], at: SourcePosition) => void,
  ) {}

  scanDocument(): void {
    let table: string[] = [];
    while (this.i < this.text.length) {
      this.skipBlanks(false);
      const c = this.text[this.i];
      if (c === undefined) break;
      if (c === '\n') {
        this.newline();
      } else if (c === '#') {
        this.skipComment();
      } else if (c === '[') {
        const at = this.position();
        this.i += this.text[this.i + 1] === '[' ? 2 : 1;
        table = this.readKey();
        if (table.length > 0) this.record(table, at);
        this.skipLine();
      } else {
        const at = this.position();
        const key = this.readKey();
        if (key.length === 0) {
          this.skipLine();
          continue;
        }
        const path = [...table, ...key];
        this.record(path, at);
        this.expectEquals();
        this.scanValue(path);
        this.skipLine();
      }
    }
  }

  // `path` is null inside arrays: keys of inline tables there are not addressable by dotted key.
  private scanValue(path: string[] | null): void {
    this.skipBlanks(false);
    const c = this.text[this.i];
    if (c === '{') {
      this.i++;
      this.scanInlineTable(path);
    } else if (c === '[') {
      this.i++;
      this.scanArray();
    } else if (c === '"' || c === "'") {
      this.readString();
    } else {
      const start = this.i;
      // Bare values end at a separator; local date-times may contain a space, so not at blanks.
      while (this.i < this.text.length && !',]}#\r\n'.includes(this.text[this.i] as string)) this.i++;
      if (this.i === start && this.i < this.text.length && this.text[this.i] !== '\n') this.i++;
    }
  }

  private scanInlineTable(path: string[] | null): void {
    while (this.i < this.text.length) {
      this.skipBlanks(true);
      const c = this.text[this.i];
      if (c === '}') {
        this.i++;
        return;
      }
      if (c === ',') {
        this.i++;
        continue;
      }
      const at = this.position();
      const key = this.readKey();
      if (key.length === 0) {
        this.i++;
        continue;
      }
      const inner = path === null ? null : [...path, ...key];
      if (inner !== null) this.record(inner, at);
      this.expectEquals();
      this.scanValue(inner);
    }
  }

  private scanArray(): void {
    while (this.i < this.text.length) {
      this.skipBlanks(true);
      const c = this.text[this.i];
      if (c === ']') {
        this.i++;
        return;
      }
      if (c === ',') {
        this.i++;
        continue;
      }
      this.scanValue(null);
    }
  }

  /** Reads `a."b c".'d'` and returns its parts; [] when no key starts here. */
  private readKey(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipBlanks(false);
      const c = this.text[this.i];
      if (c === '"' || c === "'") {
        parts.push(this.readString());
      } else {
        const start = this.i;
        while (this.i < this.text.length && /[A-Za-z0-9_-]/.test(this.text[this.i] as string)) this.i++;
        if (this.i === start) return parts;
        parts.push(this.text.slice(start, this.i));
      }
      this.skipBlanks(false);
      if (this.text[this.i] !== '.') return parts;
      this.i++;
    }
  }

  /** Skips a string of any of the four kinds and returns its content (escapes decoded loosely). */
  private readString(): string {
    const quote = this.text[this.i] as string;
    const triple = this.text.startsWith(quote.repeat(3), this.i);
    const delimiter = triple ? quote.repeat(3) : quote;
    this.i += delimiter.length;
    const start = this.i;
    while (this.i < this.text.length) {
      const c = this.text[this.i];
      if (c === '\\' && quote === '"') {
        this.i++;
        if (this.text[this.i] === '\n') this.newline();
        else this.i++;
      } else if (this.text.startsWith(delimiter, this.i)) {
        // A multi-line string may end with up to two extra quotes before its delimiter.
        while (triple && this.text[this.i + 3] === quote) this.i++;
        const content = this.text.slice(start, this.i);
        this.i += delimiter.length;
        return quote === '"' ? decodeBasic(content) : content;
      } else if (c === '\n') {
        this.newline();
      } else {
        this.i++;
      }
    }
    return this.text.slice(start);
  }

  private expectEquals(): void {
    this.skipBlanks(false);
    if (this.text[this.i] === '=') this.i++;
  }

  /** Skips spaces and tabs; with `acrossLines`, also newlines and comments. */
  private skipBlanks(acrossLines: boolean): void {
    while (this.i < this.text.length) {
      const c = this.text[this.i];
      if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (acrossLines && c === '\n') this.newline();
      else if (acrossLines && c === '#') this.skipComment();
      else return;
    }
  }

  private skipComment(): void {
    while (this.i < this.text.length && this.text[this.i] !== '\n') this.i++;
  }

  /** Skips to the end of the line; the newline itself is left for the caller. */
  private skipLine(): void {
    this.skipComment();
  }

  private newline(): void {
    this.i++;
    this.line++;
    this.lineStart = this.i;
  }

  private position(): SourcePosition {
    return { line: this.line, column: this.i - this.lineStart + 1 };
  }
}

// Keys in double quotes may hold escapes; JSON reads the common ones, and a key it cannot read
// is still located by its raw text.
function decodeBasic(content: string): string {
  try {
    return JSON.parse(`"${content}"`) as string;
  } catch {
    return content;
  }
}

const BARE_OR_QUOTED = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = new RegExp(String.raw`${BARE_OR_QUOTED}(?:\s*\.\s*${BARE_OR_QUOTED})*`, 'y');
const HEADER = /^\s*\[\[?([^\]#]*)/;

/**
 * The dotted key a position in a TOML text belongs to, for text that does not parse (a syntax
 * error, a byte that is not UTF-8), so the problem can still name a key: the table header of that
 * line, else the innermost `key =` before the column (through inline tables), else the line's
 * outermost key, each under the last [table] above. null when the line holds no key (a blank line,
 * a comment, a value continued from above). A best effort on broken text, never a parser.
 */
export function keyAtPosition(source: string, line: number, column: number): string | null {
  const lines = source.split('\n');
  let table: string[] = [];
  for (let i = 0; i < line - 1 && i < lines.length; i++) {
    const header = HEADER.exec(lines[i] ?? '');
    if (header !== null) table = splitDotted(header[1] ?? '');
  }
  const text = lines[line - 1] ?? '';
  const header = HEADER.exec(text);
  if (header !== null) {
    const name = splitDotted(header[1] ?? '');
    return name.length === 0 ? null : name.join('.');
  }
  const keys = keysBefore(text, Math.max(column - 1, 0)) ?? keysBefore(text, text.length);
  return keys === null ? null : [...table, ...keys].join('.');
}

/** The key path in force at `end` of a line: each `key = {` opens a level, `}` closes one. */
function keysBefore(text: string, end: number): string[] | null {
  const stack: string[][] = [];
  let last: string[] | null = null;
  let i = 0;
  let expectKey = true;
  while (i < end) {
    const c = text[i] ?? '';
    if (c === '#') break;
    const quote = c === '"' || c === "'";
    if (expectKey && (quote || /[A-Za-z0-9_-]/.test(c))) {
      const key = keyAt(text, i);
      expectKey = false;
      if (key !== null) {
        last = splitDotted(key);
        i += key.length;
        continue;
      }
    }
    if (quote) {
      const close = text.indexOf(c, i + 1);
      i = close === -1 ? end : close + 1;
      continue;
    }
    if (c === '{') {
      if (last !== null) stack.push(last);
      last = null;
      expectKey = true;
    } else if (c === '}') {
      // Back to the key whose inline table just closed.
      last = stack.pop() ?? null;
    } else if (c === ',') {
      expectKey = true;
    }
    i++;
  }
  if (last === null && stack.length === 0) return null;
  return [...stack.flat(), ...(last ?? [])];
}

/** The dotted key starting at `i` when an `=` follows it, else null. */
function keyAt(text: string, i: number): string | null {
  DOTTED.lastIndex = i;
  const m = DOTTED.exec(text);
  return m !== null && /^\s*=/.test(text.slice(i + m[0].length)) ? m[0] : null;
}

function splitDotted(text: string): string[] {
  const parts: string[] = [];
  const part = new RegExp(BARE_OR_QUOTED, 'g');
  for (const m of text.matchAll(part)) {
    const raw = m[0];
    parts.push(raw.startsWith('"') ? decodeBasic(raw.slice(1, -1)) : raw.startsWith("'") ? raw.slice(1, -1) : raw);
  }
  return parts;
}
