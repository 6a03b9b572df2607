'use strict';

// One factory for the four instant triggers: each subscribes Zapier's hook URL to one Callnfy
// event, and turns a delivered body {id, event, timestamp, data} into one item: `data`, whose `id`
// (appt_… / call_…) is Zapier's dedupe key.
const { hookBase, unwrap } = require('../http');

const restHookTrigger = ({ key, event, noun, label, description, sample, outputFields }) => ({
  key,
  noun,
  display: { label, description },
  operation: {
    type: 'hook',
    performSubscribe: async (z, bundle) =>
      unwrap(
        z,
        await z.request({
          url: `${hookBase(bundle)}/subscriptions`,
          method: 'POST',
          body: { hookUrl: bundle.targetUrl, event },
        }),
      ),
    performUnsubscribe: async (z, bundle) =>
      unwrap(
        z,
        await z.request({
          url: `${hookBase(bundle)}/subscriptions/${encodeURIComponent(bundle.subscribeData.id)}`,
          method: 'DELETE',
        }),
      ),
    perform: async (z, bundle) => {
      const body = bundle.cleanedRequest || {};
      if (body.event !== event || !body.data) {
        return []; // not this trigger's event: nothing for the Zap
      }
      return [body.data];
    },
    // While a user sets the Zap up: the account's latest real payloads (or a realistic example).
    performList: async (z, bundle) =>
      unwrap(z, await z.request({ url: `${hookBase(bundle)}/samples/${event}` })).map((body) => body.data),
    sample,
    outputFields,
  },
});

module.exports = { restHookTrigger };
