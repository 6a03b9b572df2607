'use strict';

// The Callnfy app for Zapier: sign-in with the API key, instant (REST-hook) triggers, actions and
// searches. Publishing: docs/operations.md in the Callnfy repository.
const { version } = require('./package.json');
const { version: platformVersion } = require('zapier-platform-core');
const authentication = require('./authentication');
const { addKey, explainErrors } = require('./http');
const { triggers } = require('./triggers');
const creates = require('./creates');
const searches = require('./searches');

const byKey = (items) => Object.fromEntries(items.map((item) => [item.key, item]));

module.exports = {
  version,
  platformVersion,
  authentication,
  // Callnfy's 429 (its message and Retry-After) reaches explainErrors instead of a generic error.
  flags: { throwForThrottlingEarly: false },
  beforeRequest: [addKey],
  afterResponse: [explainErrors],
  triggers: byKey(triggers),
  creates: byKey(creates),
  searches: byKey(searches),
  searchOrCreates: {
    find_appointment: {
      key: 'find_appointment',
      display: {
        label: 'Find or Create Appointment',
        description: 'Finds the customer\'s appointment, or books one when there is none.',
      },
      search: 'find_appointment',
      create: 'create_appointment',
    },
  },
};
