'use strict';

// Exactly the two values the Callnfy settings page shows ("Copy to clipboard"): the account's
// webhook URL (https://api.callnfy.com/webhooks/zapier/<userId>) and its czp_ API key.
const { hookBase, unwrap } = require('./http');

const test = async (z, bundle) => unwrap(z, await z.request({ url: hookBase(bundle) }));

module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'webhookUrl',
      label: 'Webhook URL',
      required: true,
      type: 'string',
      helpText:
        'In Callnfy: Settings → Integrations → Zapier, copy the **Webhook URL**.',
    },
    {
      key: 'apiKey',
      label: 'API Key',
      required: true,
      type: 'password',
      helpText:
        'On the same page, generate a key and copy the **API Key** (it starts with `czp_`).',
    },
  ],
  test,
  // The auth test answers {userId, events}: the connection is named after the account.
  connectionLabel: (z, bundle) => `Callnfy account ${bundle.inputData.userId}`,
};
