'use strict';

// The app definition against Zapier's own schema, offline, the way `zapier validate` checks it:
// compiled, its functions replaced by references, then zapier-platform-schema's validator.
// Exits 1 listing every error.
const { compileApp, validateApp } = require('zapier-platform-core/src/tools/schema');
const App = require('..');

const errors = validateApp(compileApp(App));
if (errors.length) {
  for (const error of errors) {
    console.error(`${error.property}: ${error.message}`);
  }
  process.exit(1);
}
console.log(`valid: ${Object.keys(App.triggers).length} triggers, platform ${App.platformVersion}`);
