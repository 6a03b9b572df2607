'use strict';

// The Callnfy app for Zapier: custom authentication (webhook URL + API key) and four instant
// (REST-hook) triggers. Publish with `zapier push` (see docs/operations.md in the Callnfy repository).
const { version } = require('./package.json');
const { version: platformVersion } = require('zapier-platform-core');
const authentication = require('./authentication');
const { addKey, explainErrors } = require('./http');
const triggers = require('./triggers');

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [addKey],
  afterResponse: [explainErrors],
  triggers: Object.fromEntries(triggers.map((trigger) => [trigger.key, trigger])),
};
