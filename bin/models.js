#!/usr/bin/env node
// The CLI, bundled with its dependencies (scripts/bundle-cli.mjs): one file to load instead of ~250.
import '../lib/cli-bundle/index.js';
