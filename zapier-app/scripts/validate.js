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
const count = (name) => Object.keys(App[name] || {}).length;
console.log(`valid: ${count('triggers')} triggers, ${count('creates')} creates, ${count('searches')} searches, ` +
  `platform ${App.platformVersion}`);
