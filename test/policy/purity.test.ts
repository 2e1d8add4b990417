// The layout's rule, checked: src/policy/ decides from its arguments alone. It imports no `node:`
// module, no package, and nothing outside src/policy/, so it cannot read a clock, a file or /proc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const POLICY_DIR = new URL('../../../src/policy/', import.meta.url);

test('every policy module imports only other policy modules', () => {
  const files = readdirSync(POLICY_DIR).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 8, `found ${files.length} policy modules`);
  for (const file of files) {
    const source = readFileSync(new URL(file, POLICY_DIR), 'utf8');
    const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    for (const spec of specifiers) {
      assert.match(spec, /^\.\/[\w-]+\.js$/, `${file} imports ${spec}`);
    }
    assert.doesNotMatch(source, /\b(Date\.now|performance\.now|setTimeout|setInterval|process\.)/, `${file} reads a clock, arms a timer or touches the process`);
  }
});
