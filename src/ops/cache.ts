/**
 * The shared cache (src/store/store.ts's layout), for `models cache info|verify|prune`; one command
 * per file under src/ops/cache/.
 */
export { type CacheLocation, openStore } from './cache/entries.js';
export { type CacheInfo, cacheInfo } from './cache/info.js';
export { type CacheProblem, type CacheVerifyOptions, type CacheVerifyResult, verifyCache } from './cache/verify.js';
export { type PruneOptions, type PruneResult, type PrunedManifest, parseDuration, pruneCache } from './cache/prune.js';
