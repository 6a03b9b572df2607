'use strict';

// One factory for the instant triggers: each subscribes Zapier's hook URL to one Callnfy event and
// turns a delivered body {id, event, timestamp, data} into one item: `data`, with the event's own id
// and time beside it. Delivery is at least once: a retried delivery carries the same `eventId`
// (Zapier does not deduplicate REST-hook deliveries; a Zap that must act once can filter on it).
const { explain, hookBase, unwrap } = require('../http');

const eventFields = [
  { key: 'eventId', label: 'Event ID (the same on a retried delivery)' },
  { key: 'eventTimestamp', label: 'Event Time', type: 'datetime' },
];

const item = (body) => ({ ...body.data, eventId: body.id, eventTimestamp: body.timestamp });

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
          url: `${await hookBase(z, bundle)}/subscriptions`,
          method: 'POST',
          body: { hookUrl: bundle.targetUrl, event },
        }),
      ),
    // A subscription Callnfy no longer has (removed, or the key was revoked and regenerated) is gone
    // already: unsubscribing succeeds.
    performUnsubscribe: async (z, bundle) => {
      const response = await z.request({
        url: `${await hookBase(z, bundle)}/subscriptions/${encodeURIComponent(bundle.subscribeData.id)}`,
        method: 'DELETE',
        skipThrowForStatus: true,
      });
      if (response.status === 404) {
        return {};
      }
      return unwrap(z, explain(response, z));
    },
    perform: async (z, bundle) => {
      const body = bundle.cleanedRequest || {};
      if (body.event !== event || !body.data) {
        return []; // not this trigger's event: nothing for the Zap
      }
      return [item(body)];
    },
    // While a user sets the Zap up: the account's latest real payloads (or a realistic example).
    performList: async (z, bundle) =>
      unwrap(z, await z.request({ url: `${await hookBase(z, bundle)}/samples/${event}` })).map(item),
    sample: { ...sample, eventId: 'evt_00000000000000000000000000000009', eventTimestamp: '2025-12-22T10:45:00.000Z' },
    outputFields: [...outputFields, ...eventFields],
  },
});

module.exports = { restHookTrigger };
