import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the CPUs: one, on a 2-core CI runner. Most of these
    // tests wait on servers, timers and child processes, so three files side by side halve the wall time.
    maxWorkers: 3,
  },
});
