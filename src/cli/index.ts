/** The `models` command's entry (bin/models.js imports it): it only runs main(), so main.ts imports without side effects. */
import { main } from './main.js';

await main();
