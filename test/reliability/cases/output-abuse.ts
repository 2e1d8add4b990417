import type { ReliabilityCase } from '../case.js';
export const outputAbuse: ReliabilityCase = { name: 'output-abuse', async run() { return { figures: {}, failures: ['not written yet'] }; } };
