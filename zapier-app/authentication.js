'use strict';

// Sign in with the API key alone (Callnfy: Settings → Integrations → Zapier → Generate API key).
// The account comes from GET /zapier/v1/me. Connections made earlier with the webhook URL and the
// key keep working: their stored webhookUrl is still used (see http.js).
const { api, explain, unwrap } = require('./http');

const test = async (z, bundle) => {
  const response = await z.request({ url: api(bundle, '/me'), skipThrowForStatus: true });
  if (response.status === 401) {
    throw new z.errors.Error(
      'Callnfy refused the API key. Copy it again from Callnfy: Settings → Integrations → Zapier ' +
        '(it starts with "czp_"; generating a new key replaces the old one).',
      'AuthenticationError',
      401,
    );
  }
  return unwrap(z, explain(response, z));
};

// What a person recognises among their connections (Zapier adds the app's name itself).
const connectionLabel = (z, bundle) => {
  const key = String(bundle.authData.apiKey || '');
  const email = bundle.inputData.calendarEmail;
  return `Key …${key.slice(-4)}${email ? ` (${email})` : ''}`;
};

module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'apiKey',
      label: 'API Key',
      required: true,
      type: 'password',
      helpText:
        'In Callnfy: Settings → Integrations → Zapier, generate a key and copy the **API Key** (it starts with ' +
        '`czp_`).',
    },
  ],
  test,
  connectionLabel,
};
