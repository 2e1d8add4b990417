import type { Readable } from 'node:stream';

/** Collects a child's output as whole lines (each mapped by `map`), in an array that fills as they arrive. */
export function collectLines<T = string>(stream: Readable | null, map: (line: string) => T = (l) => l as T): T[] {
  const lines: T[] = [];
  let buffered = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (text: string) => {
    buffered += text;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts.map(map));
  });
  return lines;
}
