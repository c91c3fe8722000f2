#!/usr/bin/env node
// The CLI, bundled with its dependencies (scripts/bundle-cli.mjs): one file to load instead of ~250.
//
// CommonJS (bin/package.json) so that this line runs before anything has used libuv's thread pool:
// its size is read once, at its first use (Node's ES module loader is one). Four threads (libuv's
// default) on a 2-core machine compete with the main thread and the hash worker; two made a cold
// 2,000-file install 9% faster there (README, Performance). UV_THREADPOOL_SIZE, if set, wins.
'use strict';
const { availableParallelism } = require('node:os');
const { stat } = require('node:fs');

if (process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = String(Math.max(2, Math.min(4, availableParallelism())));
  stat(__filename, () => undefined); // the pool starts here, reading the variable
  delete process.env.UV_THREADPOOL_SIZE; // not handed on to child processes
}
import('../lib/cli-bundle/index.js');
