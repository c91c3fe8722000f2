/** The Action's entry (bundled into dist/index.js): it only calls run(), so main.ts can be imported by tests. */
import { run } from './main.js';

await run();
