'use strict';

// Every request carries the key as X-Callnfy-Key; every answer is Callnfy's envelope
// {success, data} or {success: false, error: {code, message, details}}.

const hookBase = (bundle) => String(bundle.authData.webhookUrl || '').replace(/\/+$/, '');

const addKey = (request, z, bundle) => {
  if (bundle.authData && bundle.authData.apiKey) {
    request.headers = request.headers || {};
    request.headers['X-Callnfy-Key'] = bundle.authData.apiKey;
  }
  request.headers.Accept = 'application/json';
  return request;
};

const explainErrors = (response, z) => {
  if (response.status < 400) {
    return response;
  }
  let error = {};
  try {
    error = (response.json || JSON.parse(response.content)).error || {};
  } catch (ignored) {
    error = {};
  }
  const message = error.message || `HTTP ${response.status}`;
  if (response.status === 401) {
    throw new z.errors.Error(
      `Callnfy refused the API key (${message}). Copy the Webhook URL and API Key again from ` +
        'Callnfy: Settings → Integrations → Zapier.',
      'AuthenticationError',
      401,
    );
  }
  if (response.status === 429) {
    throw new z.errors.ThrottledError(message, Number(response.getHeader('retry-after')) || 60);
  }
  throw new z.errors.Error(message, error.code || 'CallnfyError', response.status);
};

const unwrap = (z, response) => {
  const body = response.data;
  if (!body || body.success !== true) {
    throw new z.errors.Error('Callnfy answered without its success envelope', 'CallnfyError', response.status);
  }
  return body.data;
};

module.exports = { addKey, explainErrors, hookBase, unwrap };
