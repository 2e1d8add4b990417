import type { ReliabilityCase } from '../case.js';
export const daemonKills: ReliabilityCase = { name: 'daemon-kills', async run() { return { figures: {}, failures: ['not written yet'] }; } };
