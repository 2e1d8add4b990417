// Writes systemd/autopilotd.service and systemd/autopilotd@.service, the repository's copies of
// the units install-service writes (src/cli/service-unit.ts). Run after `npm run build` whenever
// that file changes; test/cli/service-unit.test.ts fails while they differ.
import { writeFileSync } from 'node:fs';
import { repoUnitText, unitFileName } from '../dist/src/cli/service-unit.js';

for (const template of [false, true]) writeFileSync(`systemd/${unitFileName(template)}`, repoUnitText(template));
