// Kept equal to package.json's version by test/version.test.ts (read at build time, not at start-up).
export const VERSION = '0.1.0';
