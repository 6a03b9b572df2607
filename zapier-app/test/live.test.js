'use strict';

// The app against a live Callnfy service, as Zapier would run it. Started by
// tests/test_zapier_app.py, which runs the service (web, worker, PostgreSQL, Redis) and passes:
//   CALLNFY_API_URL, CALLNFY_JWT           the API and a user's token (to book appointments, as the SPA)
//   CALLNFY_BASE_URL, CALLNFY_API_KEY      the service's base URL (the app's override) and the connection's key
//   CALLNFY_WEBHOOK_URL                    the account's webhook URL (what connections made before the key
//                                          alone stored)
//   RECEIVER_CERT, RECEIVER_KEY            a certificate for localhost the worker trusts
// A loopback HTTPS server stands in for Zapier's hook URL.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const { after, before, test } = require('node:test');
const zapier = require('zapier-platform-core');

const App = require('..');

const appTester = zapier.createAppTester(App);
const env = process.env;
const required = ['CALLNFY_API_URL', 'CALLNFY_BASE_URL', 'CALLNFY_JWT', 'CALLNFY_WEBHOOK_URL', 'CALLNFY_API_KEY',
  'RECEIVER_CERT', 'RECEIVER_KEY'];
const missing = required.filter((name) => !env[name]);
if (missing.length) {
  throw new Error(`missing ${missing.join(', ')}: run through pytest tests/test_zapier_app.py, which starts the service`);
}

const authData = { apiKey: env.CALLNFY_API_KEY };
const received = [];
let server;
let hookUrl;

before(async () => {
  server = https.createServer({ cert: fs.readFileSync(env.RECEIVER_CERT), key: fs.readFileSync(env.RECEIVER_KEY) },
    (request, response) => {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ path: request.url, headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.end('{"status":"success"}');
      });
    });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  hookUrl = `https://localhost:${server.address().port}/hooks/catch/1/abc`;
});

after(() => server.close());

const api = async (method, path, body) => {
  const response = await fetch(`${env.CALLNFY_API_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${env.CALLNFY_JWT}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json.data;
};

const waitFor = async (predicate, timeoutMs, what) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = predicate();
    if (value) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

// Standard Webhooks: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}"> keyed by the API key.
const verify = (delivery) => {
  const { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature } = delivery.headers;
  const expected = crypto.createHmac('sha256', Buffer.from(env.CALLNFY_API_KEY, 'utf8'))
    .update(`${id}.${timestamp}.`).update(delivery.body).digest('base64');
  assert.equal(signature, `v1,${expected}`);
  assert.equal(delivery.headers['x-callnfy-key'], env.CALLNFY_API_KEY);
  return JSON.parse(delivery.body.toString('utf8'));
};

test('the connection: the key alone signs in, and the account is named', async () => {
  const result = await appTester(App.authentication.test, { authData });
  assert.deepEqual(result.events, ['appointment.created', 'appointment.rescheduled', 'appointment.cancelled',
    'appointment.completed', 'call.received']);
  assert.equal(result.webhookUrl, env.CALLNFY_WEBHOOK_URL);
  const label = await appTester(App.authentication.connectionLabel, { authData, inputData: result });
  assert.equal(label, `Key …${env.CALLNFY_API_KEY.slice(-4)}`); // no calendar connected
  const legacy = { webhookUrl: env.CALLNFY_WEBHOOK_URL, apiKey: env.CALLNFY_API_KEY };
  assert.equal((await appTester(App.authentication.test, { authData: legacy })).userId, result.userId);
});

test('a wrong key fails authentication, with a message that says what to do', async () => {
  await assert.rejects(
    appTester(App.authentication.test, { authData: { ...authData, apiKey: `czp_${'x'.repeat(40)}` } }),
    (error) => /refused the API key/.test(error.message) && /Settings → Integrations → Zapier/.test(error.message),
  );
});

test('New Appointment: subscribe, a booking is delivered signed, perform gives its data, unsubscribe stops it',
  async () => {
    const trigger = App.triggers.new_appointment.operation;
    const subscribeData = await appTester(trigger.performSubscribe, { authData, targetUrl: hookUrl });
    assert.match(subscribeData.id, /^sub_/);
    assert.equal(subscribeData.event, 'appointment.created');

    const samples = await appTester(trigger.performList, { authData });
    assert.ok(samples.length >= 1 && samples[0].id.startsWith('appt_'));

    const booked = await api('POST', '/appointments', {
      customerName: 'John Doe', customerPhone: '+44 7700 900123', scheduledAt: '2026-12-23T14:00:00Z',
      duration: 30, notes: 'First consultation',
    });
    const delivery = await waitFor(() => received[0], 20000, 'the delivery');
    const body = verify(delivery);
    assert.equal(body.event, 'appointment.created');

    const items = await appTester(trigger.perform, { authData, cleanedRequest: body });
    assert.equal(items.length, 1);
    assert.equal(items[0].id, booked.id); // Zapier's dedupe key
    for (const field of trigger.outputFields) {
      assert.ok(field.key in items[0], `output field ${field.key} is in the delivered data`);
    }
    assert.deepEqual(Object.keys(samples[0]).sort(), Object.keys(items[0]).sort()); // samples: the live shape

    await appTester(trigger.performUnsubscribe, { authData, subscribeData });
    await api('POST', '/appointments', {
      customerName: 'Jane Roe', customerPhone: '+44 7700 900456', scheduledAt: '2026-12-24T14:00:00Z',
    });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(received.length, 1, 'nothing is delivered after unsubscribing');
  });

test('the other triggers subscribe to their own events and ignore other bodies', async () => {
  const expected = { appointment_rescheduled: 'appointment.rescheduled', appointment_cancelled: 'appointment.cancelled',
    appointment_completed: 'appointment.completed', new_call: 'call.received' };
  for (const [key, event] of Object.entries(expected)) {
    const operation = App.triggers[key].operation;
    const subscribeData = await appTester(operation.performSubscribe, { authData, targetUrl: `${hookUrl}/${key}` });
    assert.equal(subscribeData.event, event);
    const list = await appTester(operation.performList, { authData });
    assert.ok(list.length >= 1 && typeof list[0].id === 'string');
    assert.deepEqual(await appTester(operation.perform, { authData, cleanedRequest: { event: 'other', data: {} } }),
      []);
    await appTester(operation.performUnsubscribe, { authData, subscribeData });
  }
});

test('every action and search: book only if free, refused when taken, move, complete, cancel, find',
  async () => {
    const create = App.creates.create_appointment.operation.perform;
    const slot = '2026-12-28T14:00:00.000Z'; // a Monday, inside the default working hours
    const inputData = { customerName: 'Ann Example', customerPhone: '+44 7700 900777', scheduledAt: slot,
      duration: 30, requireFree: true, idempotencyKey: 'form-1' };
    const booked = await appTester(create, { authData, inputData });
    assert.match(booked.id, /^appt_/);
    assert.equal(booked.scheduledAt, slot);
    const again = await appTester(create, { authData, inputData }); // Zapier retried the step
    assert.equal(again.id, booked.id);
    await assert.rejects(appTester(create, { authData, inputData: { ...inputData, idempotencyKey: 'form-2' } }),
      (error) => /^That time is not free: another appointment/.test(JSON.parse(error.message).message));

    const [customer] = await appTester(App.searches.find_customer.operation.perform,
      { authData, inputData: { phone: '+447700900777' } });
    assert.equal(customer.id, booked.customerId);
    const [found] = await appTester(App.searches.find_appointment.operation.perform,
      { authData, inputData: { customerPhone: '+44 7700 900777', status: 'scheduled' } });
    assert.equal(found.id, booked.id);
    const times = await appTester(App.searches.find_available_times.operation.perform,
      { authData, inputData: { duration: 30, count: 2, from: '2026-12-28T13:30:00Z' } });
    assert.equal(times.length, 2);
    assert.ok(times.every((t) => t.start !== slot), 'the booked slot is not offered');

    const later = '2026-12-28T15:00:00.000Z';
    const moved = await appTester(App.creates.reschedule_appointment.operation.perform,
      { authData, inputData: { appointmentId: booked.id, scheduledAt: later, duration: 45, requireFree: 'true' } });
    assert.equal(moved.scheduledAt, later);
    assert.equal(moved.duration, 45);
    const completed = await appTester(App.creates.complete_appointment.operation.perform,
      { authData, inputData: { appointmentId: booked.id, duration: 40 } });
    assert.equal(completed.status, 'completed');
    await assert.rejects(appTester(App.creates.cancel_appointment.operation.perform,
      { authData, inputData: { appointmentId: booked.id } }), (error) => JSON.parse(error.message).status === 409);

    const second = await appTester(create, { authData, inputData: { ...inputData, idempotencyKey: 'form-3' } });
    const cancelled = await appTester(App.creates.cancel_appointment.operation.perform,
      { authData, inputData: { appointmentId: second.id, reason: 'Zap test' } });
    assert.equal(cancelled.status, 'cancelled');
  });

