import type { ReliabilityCase } from '../case.js';
export const bystanders: ReliabilityCase = { name: 'bystanders', async run() { return { figures: {}, failures: ['not written yet'] }; } };
