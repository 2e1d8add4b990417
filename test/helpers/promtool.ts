// `promtool check metrics` (Debian package `prometheus`; .ci/run installs it): Prometheus's own
// parser and linter for the text exposition format. Tests skip with this reason when it is absent.
import { spawnSync } from 'node:child_process';

export const PROMTOOL_MISSING = 'promtool is not installed (apt-get install prometheus; .ci/run does it)';

/** True when promtool can be run. */
export function hasPromtool(): boolean {
  const r = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/** Parses and lints `text`; ok only with exit 0 and nothing said (any lint problem is a failure). */
export function promtoolCheck(text: string): { ok: boolean; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return { ok: r.status === 0 && output === '', output: r.error ? String(r.error) : `exit ${r.status}: ${output}` };
}
