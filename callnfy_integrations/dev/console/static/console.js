// The integrations console: the SPA's settings screen, played through the public API with the
// development JWT the page was rendered with. Every answer is the envelope {success, data|message} or
// {success: false, error: {code, message, details}}; errors are shown, never swallowed.
'use strict';

const config = JSON.parse(document.getElementById('console-config').textContent);
const $ = (id) => document.getElementById(id);
const CONSOLE_PATH = '/dev/integrations';
// Both providers' callbacks land on the same page with ?success=true or ?error=…; which Connect was
// pressed is kept in this tab's sessionStorage (the `…_auth_failed` codes name their provider anyway).
const PROVIDERS = {google: 'Google Calendar', microsoft: 'Microsoft 365'};
const CONNECTING = 'callnfy-console-connecting';
const LANDING_ERRORS = {
  access_denied: 'was not connected: access was declined on the consent page.',
  missing_scope: 'was not connected: calendar access was not granted.',
  auth_failed: 'was not connected: the sign-in could not be completed '
    + '(start Connect again from this page, in this browser).',
};
const MICROSOFT_BUSY = {provider: 'microsoft', calendarId: 'default'};  // the mailbox's default calendar

let zapierKey = null;
let pollTimer = null;

class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.details = error.details;
  }
}

/** Call the API; resolve with the success envelope, reject with an ApiError. */
async function api(method, path, {body, key, credentials = 'same-origin'} = {}) {
  const headers = key ? {'X-Callnfy-Key': key} : {Authorization: `Bearer ${config.jwt}`};
  const init = {method, headers, credentials};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, {code: 'NETWORK_ERROR', message: `the API did not answer (${error.message})`});
  }
  const envelope = await response.json().catch(() => null);
  if (envelope && envelope.success === true) return envelope;
  throw new ApiError(response.status, (envelope && envelope.error)
    || {code: `HTTP_${response.status}`, message: 'the answer was not the API envelope'});
}

// -- banners -------------------------------------------------------------------------------------

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
}

function showError(action, error) {
  const box = $('error');
  box.replaceChildren();
  const title = document.createElement('strong');
  title.textContent = `${action} failed`;
  const detail = error instanceof ApiError
    ? ` — ${error.status || ''} ${error.code}: ${error.message}` : ` — ${error.message || error}`;
  box.append(title, detail.replace(/\s+/g, ' '));
  if (error instanceof ApiError && error.details !== undefined) {
    const details = document.createElement('pre');
    details.textContent = typeof error.details === 'string' ? error.details : JSON.stringify(error.details, null, 2);
    box.append(details);
  }
  box.hidden = false;
}

/** Run a user action: clear the banners, show its error or its notice, refresh what it changed. */
async function run(action, work, button) {
  $('error').hidden = true;
  $('notice').hidden = true;
  if (button) button.disabled = true;
  try {
    const notice = await work();
    if (notice) showNotice(notice);
  } catch (error) {
    showError(action, error);
  } finally {
    if (button) button.disabled = false;
    await refresh();
  }
}

// -- rendering -----------------------------------------------------------------------------------

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

function setText(id, value) {
  $(id).textContent = value === null || value === undefined || value === '' ? '—' : value;
}

function renderGoogle(google) {
  const connected = google.connected === true;
  const reauth = google.reauthorizationRequired === true;
  setText('google-state', connected ? 'Connected' : reauth ? 'Reconnect needed' : 'Not connected');
  $('google-reauth').hidden = !reauth;
  setText('google-email', google.email);
  $('google-two-way').checked = google.syncMode === 'two-way';
  $('google-two-way').disabled = !connected;
  const directions = {'one-way': 'Callnfy → Google', 'two-way': 'Callnfy ⇄ Google'};
  setText('google-sync-mode', directions[google.syncMode] || '');
  setText('google-last-sync', when(google.lastSyncAt));
  setText('google-sync-error', google.syncError);
  $('google-connect').disabled = connected;
  $('google-connect').textContent = reauth ? 'Reconnect Google Calendar' : 'Connect Google Calendar';
  $('google-disconnect').disabled = !(connected || reauth);
  const link = $('sandbox-events');
  link.hidden = !(config.sandboxUrl && google.email);
  if (!link.hidden) link.href = `${config.sandboxUrl}/sandbox/events/${encodeURIComponent(google.email)}`;
}

function renderMicrosoft(microsoft) {
  const connected = microsoft.connected === true;
  const reauth = microsoft.reauthorizationRequired === true;
  setText('microsoft-state', connected ? 'Connected' : reauth ? 'Reconnect needed' : 'Not connected');
  $('microsoft-reauth').hidden = !reauth;
  setText('microsoft-email', microsoft.email);
  $('microsoft-two-way').checked = microsoft.syncMode === 'two-way';
  $('microsoft-two-way').disabled = !connected;
  const directions = {'one-way': 'Callnfy → Outlook', 'two-way': 'Callnfy ⇄ Outlook'};
  setText('microsoft-sync-mode', directions[microsoft.syncMode] || '');
  const counted = busyCalendars.some((item) => item.provider === 'microsoft');
  $('microsoft-busy').checked = counted;
  $('microsoft-busy').disabled = !(connected || counted);  // a choice left from a connection can be undone
  setText('microsoft-last-sync', when(microsoft.lastSyncAt));
  setText('microsoft-sync-error', microsoft.syncError);
  $('microsoft-connect').disabled = connected;
  $('microsoft-connect').textContent = reauth ? 'Reconnect Microsoft 365' : 'Connect Microsoft 365';
  $('microsoft-disconnect').disabled = !(connected || reauth);
  const link = $('microsoft-sandbox-events');
  link.hidden = !(config.microsoftSandboxUrl && microsoft.email);
  if (!link.hidden) link.href = `${config.microsoftSandboxUrl}/sandbox/events/${encodeURIComponent(microsoft.email)}`;
}

function renderZapier(zapier) {
  zapierKey = zapier.connected ? zapier.apiKey : null;
  setText('zapier-state', zapier.connected ? 'API key active' : 'No API key');
  setText('zapier-key', zapier.apiKey);
  setText('zapier-webhook-url', zapier.webhookUrl);
  setText('zapier-created', when(zapier.createdAt));
  for (const id of ['copy-key', 'copy-webhook-url', 'zapier-revoke']) $(id).disabled = !zapier.connected;
  $('zapier-generate').disabled = zapier.connected;
}

function cell(row, text, title) {
  const td = row.insertCell();
  td.textContent = text;
  if (title) td.title = title;
  return td;
}

function renderSubscriptions(subscriptions) {
  const body = $('subscriptions').tBodies[0];
  body.replaceChildren();
  for (const subscription of subscriptions) {
    const row = body.insertRow();
    cell(row, subscription.event);
    cell(row, subscription.hookUrl);
    cell(row, subscription.status, subscription.disabledReason || '');
    cell(row, when(subscription.createdAt));
  }
  $('subscriptions').hidden = subscriptions.length === 0;
  $('no-subscriptions').hidden = subscriptions.length !== 0;
}

function renderDeliveries(deliveries) {
  const body = $('deliveries').tBodies[0];
  body.replaceChildren();
  for (const delivery of deliveries) {
    const row = body.insertRow();
    cell(row, delivery.event, delivery.eventId);
    cell(row, delivery.status, delivery.nextAttemptAt ? `next attempt ${when(delivery.nextAttemptAt)}` : '');
    cell(row, String(delivery.attempts));
    cell(row, delivery.lastStatusCode ? `HTTP ${delivery.lastStatusCode}` : (delivery.lastError ? 'no answer' : '—'),
      delivery.lastError || '');
    const actions = row.insertCell();
    if (delivery.status === 'dead' || (delivery.status === 'cancelled'
        && (delivery.lastError || '').startsWith('subscription disabled'))) {
      actions.append(actionButton('Retry', 'Retrying the delivery', async () => {
        await api('POST', `/integrations/zapier/deliveries/${delivery.id}/retry`);
        await refresh();
      }));
    }
  }
  $('deliveries').hidden = deliveries.length === 0;
  $('no-deliveries').hidden = deliveries.length !== 0;
}

function actionButton(label, action, work) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'small';
  button.textContent = label;
  button.addEventListener('click', () => run(action, work, button));
  return button;
}

function renderAppointments(appointments) {
  const body = $('appointment-list').tBodies[0];
  body.replaceChildren();
  for (const appointment of appointments) {
    const row = body.insertRow();
    row.dataset.id = appointment.id;
    cell(row, appointment.customerName);
    cell(row, when(appointment.scheduledAt), appointment.scheduledAt);
    cell(row, appointment.duration);
    cell(row, appointment.status);
    for (const [sync, kind] of [[appointment.googleSync, 'google'], [appointment.microsoftSync, 'microsoft']]) {
      const state = (sync || {state: 'off'}).state;
      const syncCell = cell(row, state, sync && sync.eventId ? `event ${sync.eventId}` : '');
      syncCell.className = `sync sync-${kind} sync-${state}`;
      if (sync && sync.error) syncCell.append(` — ${sync.error}`);
    }
    const actions = row.insertCell();
    if (appointment.status === 'scheduled') {
      const path = `/appointments/${appointment.id}`;
      const later = new Date(Date.parse(appointment.scheduledAt) + 3600e3).toISOString();
      actions.append(
        actionButton('+1 h', 'Reschedule', async () => {
          await api('PATCH', path, {body: {scheduledAt: later}});
          return 'Appointment moved one hour later.';
        }),
        actionButton('Cancel', 'Cancel', async () => {
          await api('POST', `${path}/cancel`, {body: {reason: 'Cancelled from the development console'}});
          return 'Appointment cancelled.';
        }),
        actionButton('Complete', 'Complete', async () => {
          await api('POST', `${path}/complete`, {body: {}});
          return 'Appointment completed.';
        }));
    }
  }
  $('appointment-list').hidden = appointments.length === 0;
  $('no-appointments').hidden = appointments.length !== 0;
}

// -- availability --------------------------------------------------------------------------------

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
let busyCalendars = [];  // [{provider, calendarId}]: what counts as busy now
let holds = {};  // slot start -> hold id, held from this page

/** "09:00-12:00, 13:00-17:00" <-> [["09:00", "12:00"], ["13:00", "17:00"]] */
const hoursText = (intervals) => intervals.map(([opens, closes]) => `${opens}-${closes}`).join(', ');
const hoursOf = (text) => text.split(',').map((part) => part.trim()).filter(Boolean)
  .map((part) => part.split('-').map((clock) => clock.trim()));

function renderAvailabilitySettings(settings) {
  const form = $('availability-settings');
  for (const name of ['timeZone', 'bufferBefore', 'bufferAfter', 'minNotice']) form.elements[name].value = settings[name];
  const days = $('working-hours');
  days.replaceChildren();
  for (const day of DAYS) {
    const label = document.createElement('label');
    label.textContent = day[0].toUpperCase() + day.slice(1);
    const input = document.createElement('input');
    input.name = `hours-${day}`;
    input.placeholder = 'closed';
    input.value = hoursText(settings.workingHours[day] || []);
    label.append(input);
    days.append(label);
  }
  busyCalendars = settings.busyCalendars;
}

async function loadAvailabilitySettings() {
  renderAvailabilitySettings((await api('GET', '/integrations/availability/settings')).data);
}

let calendarsEdited = false;  // boxes changed and not saved: a refresh leaves them as they are

async function refreshCalendars(google) {
  if (calendarsEdited) return;
  let calendars = [];
  if (!google.connected) {
    setText('calendars-state', 'Connect Google Calendar to choose calendars.');
  } else {
    try {
      calendars = (await api('GET', '/integrations/google/calendars')).data;
      setText('calendars-state', 'Events on the checked calendars make you busy.');
    } catch (error) {
      // INSUFFICIENT_SCOPE: connected before the calendar list was asked for; Connect again adds it.
      setText('calendars-state', `${error.code}: ${error.message}`);
      $('google-connect').disabled = error.code !== 'INSUFFICIENT_SCOPE';
    }
    if (calendarsEdited) return;  // boxes changed while the list was being read
  }
  // Emptied only now, after the answer: two refreshes at once (a poll and a click) each write the
  // whole list instead of both appending to one emptied before either answered.
  const list = $('calendar-list');
  list.replaceChildren();
  for (const calendar of calendars) {
    const item = document.createElement('li');
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = calendar.id;
    box.checked = calendar.busy;
    label.append(box, ` ${calendar.name}${calendar.primary ? ' (primary)' : ''}`);
    const zone = document.createElement('span');
    zone.className = 'muted';
    zone.textContent = ` · ${calendar.timeZone || ''}`;
    item.append(label, zone);
    list.append(item);
  }
  list.hidden = calendars.length === 0;
  $('calendars-save').hidden = calendars.length === 0;
}

function renderSlots(data) {
  const body = $('slot-list').tBodies[0];
  body.replaceChildren();
  for (const slot of data.slots) {
    const row = body.insertRow();
    row.dataset.start = slot.start;
    cell(row, when(slot.start), slot.start);
    cell(row, when(slot.end), slot.end);
    const actions = row.insertCell();
    const minutes = Math.round((Date.parse(slot.end) - Date.parse(slot.start)) / 60e3);
    if (holds[slot.start]) {
      actions.append(actionButton('Book', 'Booking the held slot', async () => {
        await api('POST', '/appointments', {body: {
          customerName: 'Ann Example', customerPhone: '+447700900123', scheduledAt: slot.start,
          duration: minutes, holdId: holds[slot.start]}});
        delete holds[slot.start];
        await findSlots();
        return 'Appointment booked with its hold.';
      }), actionButton('Release', 'Releasing the hold', async () => {
        await api('DELETE', `/availability/holds/${holds[slot.start]}`);
        delete holds[slot.start];
        await findSlots();
        return 'Hold released.';
      }));
    } else {
      actions.append(actionButton('Hold', 'Holding the slot', async () => {
        const {data: hold} = await api('POST', '/availability/holds',
          {body: {scheduledAt: slot.start, duration: minutes, ttl: 300}});
        holds[slot.start] = hold.id;
        await findSlots();
        return `Held until ${when(hold.expiresAt)}.`;
      }));
    }
  }
  $('slot-list').hidden = data.slots.length === 0;
  $('no-slots').hidden = data.slots.length !== 0;
  $('busy-as-of').textContent = data.busyAsOf ? `calendars read ${when(data.busyAsOf)}` : '';
}

/** The next ten free slots in the coming 7 days; a slot held here stays listed (it is busy for others). */
async function findSlots() {
  const duration = Number($('slots-form').elements.duration.value);
  const from = new Date(Math.ceil(Date.now() / 900e3) * 900e3);
  const to = new Date(from.getTime() + 7 * 86400e3);
  const query = new URLSearchParams({from: from.toISOString(), to: to.toISOString(), duration});
  const {data} = await api('GET', `/availability?${query}`);
  const held = Object.keys(holds).filter((start) => Date.parse(start) >= from.getTime())
    .map((start) => ({start, end: new Date(Date.parse(start) + duration * 60e3).toISOString()}));
  const slots = [...held, ...data.slots.filter((slot) => !holds[slot.start])]
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start)).slice(0, 10);
  renderSlots({...data, slots});
}

function wireAvailability() {
  $('availability-settings').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target.elements;
    run('Saving the availability settings', async () => {
      const workingHours = Object.fromEntries(DAYS.map((day) => [day, hoursOf(form[`hours-${day}`].value)]));
      await api('PUT', '/integrations/availability/settings', {body: {
        timeZone: form.timeZone.value, bufferBefore: Number(form.bufferBefore.value),
        bufferAfter: Number(form.bufferAfter.value), minNotice: Number(form.minNotice.value), workingHours}});
      await loadAvailabilitySettings();
      return 'Availability settings saved.';
    }, $('availability-save'));
  });
  $('calendars-save').addEventListener('click', (event) => run('Saving the busy calendars', async () => {
    const chosen = [...$('calendar-list').querySelectorAll('input:checked')]
      .map((box) => ({provider: 'google', calendarId: box.value}));
    const others = busyCalendars.filter((item) => item.provider !== 'google');
    await api('PUT', '/integrations/availability/settings', {body: {busyCalendars: [...others, ...chosen]}});
    calendarsEdited = false;
    await loadAvailabilitySettings();
    return `${chosen.length} Google calendar(s) count as busy.`;
  }, event.currentTarget));
  $('calendar-list').addEventListener('change', () => { calendarsEdited = true; });
  $('slots-form').addEventListener('submit', (event) => {
    event.preventDefault();
    run('Finding free slots', async () => { await findSlots(); }, $('slots-find'));
  });
}

// -- loading -------------------------------------------------------------------------------------

async function refresh() {
  try {
    const [status, appointments, availability] = await Promise.all([
      api('GET', '/integrations/status'),
      api('GET', '/appointments?page_size=10'),
      api('GET', '/integrations/availability/settings'),
    ]);
    busyCalendars = availability.data.busyCalendars;  // only these: the form may hold unsaved edits
    renderGoogle(status.data.googleCalendar);
    renderMicrosoft(status.data.microsoftCalendar);
    renderZapier(status.data.zapier);
    renderAppointments(appointments.data);
    await refreshCalendars(status.data.googleCalendar);
    await refreshSubscriptions(status.data.zapier);
    renderDeliveries((await api('GET', '/integrations/zapier/deliveries?page_size=10')).data);
    // A push to Google or Outlook is on its way: look again shortly, until none is pending.
    clearTimeout(pollTimer);
    const pending = (sync) => sync && sync.state === 'pending';
    if (appointments.data.some((a) => pending(a.googleSync) || pending(a.microsoftSync))) {
      pollTimer = setTimeout(refresh, 1500);
    }
  } catch (error) {
    showError('Loading the settings', error);
  }
}

async function refreshSubscriptions(zapier) {
  if (!zapier.connected) {
    renderSubscriptions([]);
    return;
  }
  // The REST hooks' own path, from the webhook URL: authenticated by the key, as Zapier calls them.
  const path = `${new URL(zapier.webhookUrl).pathname}/subscriptions`;
  renderSubscriptions((await api('GET', path, {key: zapier.apiKey})).data);
}

async function copy(text, what) {
  if (!navigator.clipboard) {
    throw new Error('the clipboard needs a secure context: open the console on localhost or over https');
  }
  await navigator.clipboard.writeText(text);
  return `${what} copied to the clipboard.`;
}

function defaultAppointmentTime() {
  const tomorrow = new Date(Date.now() + 86400e3);
  tomorrow.setHours(10, 0, 0, 0);
  const pad = (n) => String(n).padStart(2, '0');
  return `${tomorrow.getFullYear()}-${pad(tomorrow.getMonth() + 1)}-${pad(tomorrow.getDate())}T10:00`;
}

/** A callback lands on FRONTEND_URL/settings/integrations?success=true|error=…: say how it went. */
function reportLanding() {
  const params = new URLSearchParams(location.search);
  const code = params.get('error');
  const failed = /^(google|microsoft)_auth_failed$/.exec(code || '');
  const provider = failed ? failed[1] : sessionStorage.getItem(CONNECTING);
  const name = PROVIDERS[provider] || 'The calendar';
  if (params.get('success') === 'true') showNotice(`${name} connected.`);
  if (code) {
    const reason = LANDING_ERRORS[failed ? 'auth_failed' : code];
    showError(`Connecting ${PROVIDERS[provider] || 'a calendar'}`, new Error(reason ? `${name} ${reason}` : code));
  }
  if (params.has('success') || code) sessionStorage.removeItem(CONNECTING);
  if (location.pathname !== CONSOLE_PATH || location.search) history.replaceState(null, '', CONSOLE_PATH);
}

function warnAboutOrigin() {
  const api = new URL(config.publicApiUrl);
  if (api.origin === location.origin) return;
  // The binder cookie is set for this host; each provider's callback goes to PUBLIC_API_URL's host.
  for (const [provider, name] of [['google', 'Google'], ['microsoft', 'Microsoft']]) {
    $(`${provider}-origin`).textContent = `${name}'s callback goes to ${api.origin} (PUBLIC_API_URL): open this `
      + `console at ${api.origin}${CONSOLE_PATH} for Connect to finish here.`;
    $(`${provider}-origin`).hidden = false;
  }
}

/** Start a provider's Connect: its consent page, then back to this page through the callback. */
async function connect(provider) {
  // credentials: 'include' so the browser keeps the binder cookie the callback asks for.
  const {data} = await api('POST', `/integrations/${provider}/connect`, {credentials: 'include'});
  sessionStorage.setItem(CONNECTING, provider);
  location.assign(data.authUrl);
}

function wire() {
  $('refresh').addEventListener('click', () => run('Refreshing', async () => null));
  $('google-connect').addEventListener('click', (event) => run('Connect', () => connect('google'),
    event.currentTarget));
  $('google-disconnect').addEventListener('click', (event) => run('Disconnect', async () => (
    await api('DELETE', '/integrations/google/disconnect')).message, event.currentTarget));
  $('google-two-way').addEventListener('change', (event) => run('Changing the sync mode', async () => {
    const syncMode = event.target.checked ? 'two-way' : 'one-way';
    const {data} = await api('PUT', '/integrations/google/settings', {body: {syncMode}});
    return `Sync mode: ${data.syncMode}.`;
  }));
  $('microsoft-connect').addEventListener('click', (event) => run('Connect', () => connect('microsoft'),
    event.currentTarget));
  $('microsoft-disconnect').addEventListener('click', (event) => run('Disconnect', async () => (
    await api('DELETE', '/integrations/microsoft/disconnect')).message, event.currentTarget));
  $('microsoft-two-way').addEventListener('change', (event) => run('Changing the Microsoft sync mode', async () => {
    const syncMode = event.target.checked ? 'two-way' : 'one-way';
    const {data} = await api('PUT', '/integrations/microsoft/settings', {body: {syncMode}});
    return `Microsoft sync mode: ${data.syncMode}.`;
  }));
  $('microsoft-busy').addEventListener('change', (event) => run('Saving the busy calendars', async () => {
    const others = busyCalendars.filter((item) => item.provider !== 'microsoft');
    const chosen = event.target.checked ? [MICROSOFT_BUSY] : [];
    const {data} = await api('PUT', '/integrations/availability/settings',
      {body: {busyCalendars: [...others, ...chosen]}});
    busyCalendars = data.busyCalendars;
    return chosen.length ? "Microsoft 365's default calendar counts as busy." : 'Microsoft 365 does not count as busy.';
  }));
  $('zapier-generate').addEventListener('click', (event) => run('Generate API key', async () => {
    await api('POST', '/integrations/zapier/generate-key');
    return 'API key generated: paste it and the webhook URL into the Callnfy app on Zapier.';
  }, event.currentTarget));
  $('zapier-revoke').addEventListener('click', (event) => run('Revoke key', async () => (
    await api('DELETE', '/integrations/zapier/revoke-key')).message, event.currentTarget));
  $('copy-key').addEventListener('click', () => run('Copy', () => copy(zapierKey, 'API key')));
  $('copy-webhook-url').addEventListener('click', () => run('Copy', () => copy(
    $('zapier-webhook-url').textContent, 'Webhook URL')));
  $('appointment-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    run('Create appointment', async () => {
      const body = {
        customerName: form.get('customerName'),
        customerPhone: form.get('customerPhone'),
        scheduledAt: new Date(form.get('scheduledAt')).toISOString(),  // the local time entered, in UTC
        duration: Number(form.get('duration')),
      };
      if (form.get('customerEmail')) body.customerEmail = form.get('customerEmail');
      await api('POST', '/appointments', {body});
      return 'Appointment created.';
    }, $('appointment-create'));
  });
}

function start() {
  setText('user-id', config.userId);
  document.querySelector('#appointment-form [name=scheduledAt]').value = defaultAppointmentTime();
  wire();
  wireAvailability();
  reportLanding();
  warnAboutOrigin();
  if (!config.jwt) {
    showError('Signing in', new Error(`no development token: ${config.tokenError}`));
    return;
  }
  loadAvailabilitySettings().catch((error) => showError('Loading the availability settings', error));
  refresh();
}

start();
