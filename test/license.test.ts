// The package says MIT and ships the licence text (issue #19): LICENSE is in what `npm pack` packs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('LICENSE is the MIT licence of package.json, and npm pack includes it', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { license: string; files: string[] };
  assert.equal(pkg.license, 'MIT');
  const text = readFileSync(`${ROOT}LICENSE`, 'utf8');
  assert.match(text, /^MIT License\n\nCopyright \(c\) 2026 the autopilotd authors\n/);
  assert.match(text, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  // --ignore-scripts: packing would otherwise run `prepare`, a build, under the tests' feet.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [packed] = JSON.parse(out) as [{ files: { path: string }[] }];
  assert.ok(packed.files.some((f) => f.path === 'LICENSE'), packed.files.map((f) => f.path).join(' '));
});
