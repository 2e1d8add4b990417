// The broken configurations of test/fixtures/bad-config/ (also run by `npm test`, in
// test/cli/bad-config.test.ts): each exits 78 naming file, line and key, and nothing starts.

import { badConfigCases, runBadConfig } from '../../helpers/bad-config.js';
import { Verdict, type ReliabilityCase } from '../case.js';

export const badConfigs: ReliabilityCase = {
  name: 'bad-configs',
  async run() {
    const v = new Verdict();
    const cases = badConfigCases();
    let ok = 0;
    for (const c of cases) {
      const problems = await runBadConfig(c);
      if (problems.length === 0) ok += 1;
      else v.failures.push(`${c.name}: ${problems.join('; ')}`);
    }
    v.fig('cases', cases.length);
    v.fig('refused_correctly', ok);
    v.require(cases.length >= 30, `only ${cases.length} cases (at least 30 required)`);
    return v.result();
  },
};
