'use strict';

// Every request carries the key as X-Callnfy-Key; every answer is Callnfy's envelope
// {success, data} or {success: false, error: {code, message, details}}. Errors become messages a
// Zap user can act on, the Zapier way (see explainErrors).

// Callnfy's API. CALLNFY_BASE_URL overrides it (tests, staging); a connection made with the webhook
// URL (before sign-in with the key alone) keeps talking to that URL's host.
const DEFAULT_BASE_URL = 'https://api.callnfy.com';

const trimmed = (url) => String(url || '').replace(/\/+$/, '');

const baseUrl = (bundle) => {
  const legacy = bundle.authData && bundle.authData.webhookUrl;
  if (legacy) {
    return new URL(legacy).origin;
  }
  return trimmed(process.env.CALLNFY_BASE_URL || DEFAULT_BASE_URL);
};

const api = (bundle, path) => `${baseUrl(bundle)}/zapier/v1${path}`;

const unwrap = (z, response) => {
  const body = response.data;
  if (!body || body.success !== true) {
    throw new z.errors.Error(
      `Callnfy answered HTTP ${response.status} without its usual JSON: check that the service is up.`,
      'CallnfyError',
      response.status,
    );
  }
  return body.data;
};

// The REST hooks' base: the connection's webhook URL, or the one /zapier/v1/me names.
const hookBase = async (z, bundle) => {
  if (bundle.authData && bundle.authData.webhookUrl) {
    return trimmed(bundle.authData.webhookUrl);
  }
  return trimmed(unwrap(z, await z.request({ url: api(bundle, '/me') })).webhookUrl);
};

const addKey = (request, z, bundle) => {
  request.headers = request.headers || {};
  if (bundle.authData && bundle.authData.apiKey) {
    request.headers['X-Callnfy-Key'] = bundle.authData.apiKey;
  }
  request.headers.Accept = 'application/json';
  return request;
};

const errorOf = (response) => {
  try {
    const body = response.json !== undefined ? response.json : JSON.parse(response.content);
    return body && body.error ? body.error : null;
  } catch (ignored) {
    return null;
  }
};

const describeConflicts = (details) => {
  const conflicts = (details && details.conflicts) || [];
  const reasons = {
    appointment: 'another appointment',
    hold: 'a slot held for another caller',
    google: 'a busy event in Google Calendar',
    microsoft: 'a busy event in Outlook',
    outside_working_hours: 'outside working hours',
    min_notice: 'too soon (not enough notice)',
  };
  const parts = conflicts.map((c) => `${reasons[c.source] || c.source} (${c.start} to ${c.end})`);
  return parts.length ? `: ${parts.join('; ')}` : '';
};

// An error answer as the error a Zap user can act on. 429 arrives here too (the app sets
// throwForThrottlingEarly: false), so Callnfy's message and Retry-After reach the user.
const explain = (response, z) => {
  if (response.status < 400) {
    return response;
  }
  const error = errorOf(response);
  if (!error) {
    throw new z.errors.Error(
      `Callnfy answered HTTP ${response.status} without its usual JSON. Check that the service is up ` +
        '(and, for a test or staging connection, that CALLNFY_BASE_URL points at Callnfy).',
      'CallnfyError',
      response.status,
    );
  }
  const message = error.message || `HTTP ${response.status}`;
  if (response.status === 401) {
    throw new z.errors.ExpiredAuthError(
      'Callnfy no longer accepts this connection\'s API key (it was revoked or a new one was generated). ' +
        'Reconnect with the key from Callnfy: Settings → Integrations → Zapier.',
    );
  }
  if (response.status === 429) {
    const retryAfter = Number(response.getHeader('retry-after')) || 60;
    throw new z.errors.ThrottledError(`${message} (Callnfy asks to retry in ${retryAfter} s)`, retryAfter);
  }
  if (response.status === 404) {
    throw new z.errors.Error(
      `${message}. Check that the ID came from a Callnfy step of this account (appointments start with ` +
        '"appt_") and that it was not deleted.',
      error.code || 'NOT_FOUND',
      404,
    );
  }
  if (error.code === 'SLOT_UNAVAILABLE') {
    throw new z.errors.Error(`That time is not free${describeConflicts(error.details)}. Choose another time, ` +
      'for example with the Find Available Times search.', error.code, response.status);
  }
  const fields = error.details && typeof error.details === 'object' && !Array.isArray(error.details)
    ? Object.entries(error.details).map(([field, problems]) => `${field}: ${[].concat(problems).join(' ')}`)
    : [];
  throw new z.errors.Error(fields.length ? `${message} (${fields.join('; ')})` : message,
    error.code || 'CallnfyError', response.status);
};

// afterResponse: a request made with skipThrowForStatus handles its own answer.
const explainErrors = (response, z) => (response.skipThrowForStatus ? response : explain(response, z));

module.exports = { DEFAULT_BASE_URL, addKey, api, baseUrl, explain, explainErrors, hookBase, unwrap };
