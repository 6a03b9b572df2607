'use strict';

// Every trigger, action, search and error path against recorded answers (nock), with no service
// running: `npm test`. The answers are Callnfy's documented envelope and routes (/zapier/v1 and the
// REST hooks); test/live.test.js runs the same app against the real service.

const assert = require('node:assert/strict');
const { afterEach, before, test } = require('node:test');
const nock = require('nock');
const zapier = require('zapier-platform-core');

const BASE = 'https://callnfy.test';
process.env.CALLNFY_BASE_URL = BASE;
const App = require('..');

const appTester = zapier.createAppTester(App);
const KEY = `czp_${'a'.repeat(36)}9Zx1`;
const USER = '6f1f6c1e-1d7e-4b8e-9a51-3c2f0e4d5a6b';
const HOOKS = `/webhooks/zapier/${USER}`;
const authData = { apiKey: KEY };
const me = { userId: USER, webhookUrl: `${BASE}${HOOKS}`, events: ['appointment.created'], calendarEmail: null };
const appointment = { ...App.creates.create_appointment.operation.sample, id: 'appt_11111111111111111111111111111111' };

// Every request must carry the key; a request nobody recorded fails the test.
const callnfy = (host = BASE) => nock(host, { reqheaders: { 'x-callnfy-key': KEY } });
const ok = (data, status = 200) => [status, { success: true, data }];
const failure = (status, code, message, details) => [status, { success: false, error: { code, message, details } }];
const parsed = (error) => JSON.parse(error.message);

before(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  assert.deepEqual(pending, [], 'every recorded answer was asked for');
});

// -- signing in ------------------------------------------------------------------------------------

test('the auth test reads the account from /zapier/v1/me with the key alone', async () => {
  callnfy().get('/zapier/v1/me').reply(...ok({ ...me, calendarEmail: 'owner@example.com' }));
  const result = await appTester(App.authentication.test, { authData });
  assert.equal(result.userId, USER);
  const label = await appTester(App.authentication.connectionLabel, { authData, inputData: result });
  assert.equal(label, 'Key …9Zx1 (owner@example.com)');
  assert.equal(await appTester(App.authentication.connectionLabel, { authData, inputData: me }), 'Key …9Zx1');
});

test('a refused key fails the auth test with what to do, not an expired-auth error', async () => {
  callnfy().get('/zapier/v1/me').reply(...failure(401, 'UNAUTHORIZED', 'Unauthorized'));
  await assert.rejects(appTester(App.authentication.test, { authData }), (error) => {
    assert.notEqual(error.name, 'ExpiredAuthError');
    assert.match(parsed(error).message, /refused the API key/);
    assert.match(parsed(error).message, /Settings → Integrations → Zapier/);
    return true;
  });
});

test('a connection made with the webhook URL keeps using its host and hooks', async () => {
  const legacy = { webhookUrl: `https://legacy.callnfy.test${HOOKS}/`, apiKey: KEY };
  callnfy('https://legacy.callnfy.test').get('/zapier/v1/me').reply(...ok(me));
  await appTester(App.authentication.test, { authData: legacy });
  callnfy('https://legacy.callnfy.test').post(`${HOOKS}/subscriptions`, { hookUrl: 'https://hooks.zapier.com/x',
    event: 'appointment.created' }).reply(...ok({ id: 'sub_1', event: 'appointment.created' }, 201));
  const subscribed = await appTester(App.triggers.new_appointment.operation.performSubscribe,
    { authData: legacy, targetUrl: 'https://hooks.zapier.com/x' });
  assert.equal(subscribed.id, 'sub_1'); // no /me call: the stored webhook URL names the hooks
});

// -- triggers ----------------------------------------------------------------------------------------

const EVENTS = {
  new_appointment: 'appointment.created', appointment_rescheduled: 'appointment.rescheduled',
  appointment_cancelled: 'appointment.cancelled', appointment_completed: 'appointment.completed',
  new_call: 'call.received',
};

test('each trigger subscribes Zapier\'s hook URL to its own event, found through /me', async () => {
  assert.deepEqual(Object.keys(App.triggers).sort(), Object.keys(EVENTS).sort());
  for (const [key, event] of Object.entries(EVENTS)) {
    callnfy().get('/zapier/v1/me').reply(...ok(me));
    callnfy().post(`${HOOKS}/subscriptions`, { hookUrl: `https://hooks.zapier.com/${key}`, event })
      .reply(...ok({ id: `sub_${key}`, event }, 201));
    const data = await appTester(App.triggers[key].operation.performSubscribe,
      { authData, targetUrl: `https://hooks.zapier.com/${key}` });
    assert.equal(data.event, event);
  }
});

test('unsubscribing succeeds, also when Callnfy no longer has the subscription (404)', async () => {
  const operation = App.triggers.new_call.operation;
  callnfy().get('/zapier/v1/me').reply(...ok(me));
  callnfy().delete(`${HOOKS}/subscriptions/sub_1`).reply(...ok({ id: 'sub_1' }));
  assert.deepEqual(await appTester(operation.performUnsubscribe, { authData, subscribeData: { id: 'sub_1' } }),
    { id: 'sub_1' });
  callnfy().get('/zapier/v1/me').reply(...ok(me));
  callnfy().delete(`${HOOKS}/subscriptions/sub_2`).reply(...failure(404, 'NOT_FOUND', 'Subscription not found'));
  assert.deepEqual(await appTester(operation.performUnsubscribe, { authData, subscribeData: { id: 'sub_2' } }), {});
  callnfy().get('/zapier/v1/me').reply(...ok(me));
  callnfy().delete(`${HOOKS}/subscriptions/sub_3`).reply(...failure(500, 'INTERNAL_ERROR', 'Something broke'));
  await assert.rejects(appTester(operation.performUnsubscribe, { authData, subscribeData: { id: 'sub_3' } }),
    (error) => parsed(error).message === 'Something broke');
});

test('a delivery becomes one item with the event id and time; another event\'s body none', async () => {
  for (const [key, event] of Object.entries(EVENTS)) {
    const operation = App.triggers[key].operation;
    const body = { id: 'evt_1', event, timestamp: '2025-12-22T10:45:00.000Z', data: { ...operation.sample } };
    delete body.data.eventId;
    delete body.data.eventTimestamp;
    const [item] = await appTester(operation.perform, { authData, cleanedRequest: body });
    assert.deepEqual(item, { ...body.data, eventId: 'evt_1', eventTimestamp: '2025-12-22T10:45:00.000Z' });
    for (const field of operation.outputFields) {
      assert.ok(field.key in operation.sample, `${key}: output field ${field.key} is in the sample`);
    }
    assert.deepEqual(await appTester(operation.perform, { authData, cleanedRequest: { event: 'other', data: {} } }),
      []);
  }
});

test('the rescheduled trigger carries the previous time and length', () => {
  const keys = App.triggers.appointment_rescheduled.operation.outputFields.map((f) => f.key);
  assert.ok(keys.includes('previousScheduledAt') && keys.includes('previousDuration'));
});

test('performList gives the samples endpoint\'s bodies in the live item shape', async () => {
  callnfy().get('/zapier/v1/me').reply(...ok(me));
  callnfy().get(`${HOOKS}/samples/appointment.rescheduled`).reply(...ok([
    { id: 'evt_2', event: 'appointment.rescheduled', timestamp: '2025-12-22T10:45:00.000Z', data: { id: 'appt_2' } }]));
  const items = await appTester(App.triggers.appointment_rescheduled.operation.performList, { authData });
  assert.deepEqual(items, [{ id: 'appt_2', eventId: 'evt_2', eventTimestamp: '2025-12-22T10:45:00.000Z' }]);
});

// -- actions -------------------------------------------------------------------------------------------

test('Create Appointment sends the fields, "only if free" and the idempotency key', async () => {
  callnfy().post('/zapier/v1/appointments', {
    customerName: 'John Doe', customerPhone: '+44 7700 900123', customerEmail: 'john@example.com',
    scheduledAt: '2026-12-23T14:00:00Z', duration: 45, notes: 'From the web form', requireFree: true,
    idempotencyKey: 'form-42',
  }).reply(...ok(appointment, 201));
  const result = await appTester(App.creates.create_appointment.operation.perform, { authData, inputData: {
    customerName: 'John Doe', customerPhone: '+44 7700 900123', customerEmail: 'john@example.com',
    scheduledAt: '2026-12-23T14:00:00Z', duration: '45', notes: 'From the web form', requireFree: true,
    idempotencyKey: 'form-42' } });
  assert.equal(result.id, appointment.id);

  callnfy().post('/zapier/v1/appointments', { customerName: 'Jo', customerPhone: '+447700900124',
    scheduledAt: '2026-12-23T15:00:00Z', requireFree: false }).reply(...ok(appointment, 201));
  await appTester(App.creates.create_appointment.operation.perform, { authData, inputData: {
    customerName: 'Jo', customerPhone: '+447700900124', scheduledAt: '2026-12-23T15:00:00Z', requireFree: 'false',
    customerEmail: '', notes: '' } });
});

test('a taken slot fails the step with what is in the way', async () => {
  callnfy().post('/zapier/v1/appointments').reply(...failure(409, 'SLOT_UNAVAILABLE', 'That time is not available',
    { conflicts: [{ start: '2026-12-23T14:00:00.000Z', end: '2026-12-23T15:00:00.000Z', source: 'google' }] }));
  await assert.rejects(appTester(App.creates.create_appointment.operation.perform, { authData, inputData: {
    customerName: 'Jo', customerPhone: '+447700900124', scheduledAt: '2026-12-23T14:00:00Z', requireFree: true } }),
  (error) => {
    const { message, code, status } = parsed(error);
    assert.equal(code, 'SLOT_UNAVAILABLE');
    assert.equal(status, 409);
    assert.match(message, /^That time is not free: a busy event in Google Calendar \(2026-12-23T14:00:00.000Z to /);
    assert.match(message, /Find Available Times/);
    return true;
  });
});

test('Reschedule, Cancel and Complete post to the appointment\'s own routes', async () => {
  const id = appointment.id;
  callnfy().post(`/zapier/v1/appointments/${id}/reschedule`,
    { scheduledAt: '2026-12-24T09:00:00Z', duration: 60, requireFree: true }).reply(...ok(appointment));
  await appTester(App.creates.reschedule_appointment.operation.perform, { authData, inputData: {
    appointmentId: id, scheduledAt: '2026-12-24T09:00:00Z', duration: 60, requireFree: 'true' } });
  callnfy().post(`/zapier/v1/appointments/${id}/cancel`, { reason: 'Payment missed' }).reply(...ok(appointment));
  await appTester(App.creates.cancel_appointment.operation.perform,
    { authData, inputData: { appointmentId: id, reason: 'Payment missed' } });
  callnfy().post(`/zapier/v1/appointments/${id}/cancel`, {}).reply(...ok(appointment));
  await appTester(App.creates.cancel_appointment.operation.perform, { authData, inputData: { appointmentId: id } });
  callnfy().post(`/zapier/v1/appointments/${id}/complete`, { duration: 25 }).reply(...ok(appointment));
  await appTester(App.creates.complete_appointment.operation.perform,
    { authData, inputData: { appointmentId: id, duration: '25' } });
});

// -- searches ------------------------------------------------------------------------------------------

test('Find Customer searches by phone or email, and asks for one of them', async () => {
  callnfy().get('/zapier/v1/customers').query({ phone: '+44 7700 900123' }).reply(...ok([{ id: 'cust_1' }]));
  assert.deepEqual(await appTester(App.searches.find_customer.operation.perform,
    { authData, inputData: { phone: '+44 7700 900123' } }), [{ id: 'cust_1' }]);
  callnfy().get('/zapier/v1/customers').query({ email: 'john@example.com' }).reply(...ok([]));
  assert.deepEqual(await appTester(App.searches.find_customer.operation.perform,
    { authData, inputData: { email: 'john@example.com', phone: '' } }), []);
  await assert.rejects(appTester(App.searches.find_customer.operation.perform, { authData, inputData: {} }),
    (error) => /phone number or an email/.test(parsed(error).message));
});

test('Find Appointment searches by the customer, with a status, and pairs with Create', async () => {
  callnfy().get('/zapier/v1/appointments').query({ customerPhone: '+447700900123', status: 'scheduled' })
    .reply(...ok([appointment]));
  const found = await appTester(App.searches.find_appointment.operation.perform,
    { authData, inputData: { customerPhone: '+447700900123', status: 'scheduled' } });
  assert.equal(found[0].id, appointment.id);
  await assert.rejects(appTester(App.searches.find_appointment.operation.perform, { authData, inputData: {} }));
  assert.deepEqual(App.searchOrCreates.find_appointment,
    { ...App.searchOrCreates.find_appointment, search: 'find_appointment', create: 'create_appointment' });
});

test('Find Available Times answers the next slots, each an item with an id', async () => {
  callnfy().get('/zapier/v1/availability/slots').query({ duration: '30', count: '2' }).reply(...ok([
    { start: '2026-12-23T09:00:00.000Z', end: '2026-12-23T09:30:00.000Z' },
    { start: '2026-12-23T09:15:00.000Z', end: '2026-12-23T09:45:00.000Z' }]));
  const slots = await appTester(App.searches.find_available_times.operation.perform,
    { authData, inputData: { duration: 30, count: 2, from: '' } });
  assert.deepEqual(slots.map((s) => s.id), ['2026-12-23T09:00:00.000Z', '2026-12-23T09:15:00.000Z']);
  assert.equal(slots[0].end, '2026-12-23T09:30:00.000Z');
});

// -- errors, the Zapier way ------------------------------------------------------------------------------

const cancel = (id = appointment.id) => appTester(App.creates.cancel_appointment.operation.perform,
  { authData, inputData: { appointmentId: id } });

test('a 401 outside the auth test asks the user to reconnect (ExpiredAuthError)', async () => {
  callnfy().post(`/zapier/v1/appointments/${appointment.id}/cancel`).reply(...failure(401, 'UNAUTHORIZED',
    'Unauthorized'));
  await assert.rejects(cancel(), (error) => error.name === 'ExpiredAuthError' && /Reconnect/.test(error.message));
});

test('a 429 passes on Callnfy\'s message and Retry-After', async () => {
  callnfy().post(`/zapier/v1/appointments/${appointment.id}/cancel`)
    .reply(429, { success: false, error: { code: 'TOO_MANY_REQUESTS', message: 'Too many requests' } },
      { 'Retry-After': '17' });
  await assert.rejects(cancel(), (error) => {
    assert.equal(error.name, 'ThrottledError');
    assert.deepEqual(parsed(error), { message: 'Too many requests (Callnfy asks to retry in 17 s)', delay: 17 });
    return true;
  });
});

test('a 404 says what to check', async () => {
  callnfy().post('/zapier/v1/appointments/appt_nope/cancel').reply(...failure(404, 'NOT_FOUND',
    'Appointment not found'));
  await assert.rejects(cancel('appt_nope'), (error) => {
    assert.equal(parsed(error).status, 404);
    assert.match(parsed(error).message, /^Appointment not found\. Check that the ID came from a Callnfy step/);
    return true;
  });
});

test('an answer that is not Callnfy\'s JSON says so, whatever its status', async () => {
  callnfy().post(`/zapier/v1/appointments/${appointment.id}/cancel`).reply(502, '<html>Bad gateway</html>',
    { 'Content-Type': 'text/html' });
  await assert.rejects(cancel(), (error) => /HTTP 502 without its usual JSON/.test(parsed(error).message));
  callnfy().post(`/zapier/v1/appointments/${appointment.id}/cancel`).reply(200, 'OK');
  await assert.rejects(cancel(), (error) => /HTTP 200 without its usual JSON/.test(parsed(error).message));
});

test('a 400 names the fields and what is wrong with them', async () => {
  callnfy().post('/zapier/v1/appointments').reply(...failure(400, 'VALIDATION_ERROR', 'Request validation failed',
    { customerPhone: ['Not a valid phone number.'] }));
  await assert.rejects(appTester(App.creates.create_appointment.operation.perform, { authData, inputData: {
    customerName: 'Jo', customerPhone: '12', scheduledAt: '2026-12-23T14:00:00Z' } }), (error) => {
    assert.equal(parsed(error).code, 'VALIDATION_ERROR');
    assert.equal(parsed(error).message, 'Request validation failed (customerPhone: Not a valid phone number.)');
    return true;
  });
});
