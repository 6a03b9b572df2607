'use strict';

// Searches: customers by phone or email, appointments by their customer, and the next free times.
// Each answers a list (Zapier takes the first item; an empty list is "nothing found").
const { api, unwrap } = require('../http');
const { appointmentFields, appointmentSample } = require('../triggers');

const given = (value) => value !== undefined && value !== null && value !== '';
const query = (input, names) => Object.fromEntries(names.filter((n) => given(input[n])).map((n) => [n, input[n]]));

const eitherPhoneOrEmail = (z, input, phone, email) => {
  if (!given(input[phone]) && !given(input[email])) {
    throw new z.errors.Error('Give a phone number or an email address to search by.', 'MissingInput', 400);
  }
};

const findCustomer = {
  key: 'find_customer',
  noun: 'Customer',
  display: { label: 'Find Customer', description: 'Finds a Callnfy customer by phone number or email address.' },
  operation: {
    inputFields: [
      { key: 'phone', label: 'Phone', helpText: 'Any format; matched the way Callnfy stores numbers.' },
      { key: 'email', label: 'Email' },
    ],
    perform: async (z, bundle) => {
      eitherPhoneOrEmail(z, bundle.inputData, 'phone', 'email');
      return unwrap(z, await z.request({ url: api(bundle, '/customers'),
        params: query(bundle.inputData, ['phone', 'email']) }));
    },
    sample: { id: 'cust_00000000000000000000000000000001', name: 'John Doe', phone: '+447700900123',
      email: 'john@example.com' },
    outputFields: [
      { key: 'id', label: 'Customer ID' },
      { key: 'name', label: 'Name' },
      { key: 'phone', label: 'Phone' },
      { key: 'email', label: 'Email' },
    ],
  },
};

const findAppointment = {
  key: 'find_appointment',
  noun: 'Appointment',
  display: { label: 'Find Appointment', description: 'Finds a customer\'s appointments, the next upcoming first.' },
  operation: {
    inputFields: [
      { key: 'customerPhone', label: 'Customer Phone' },
      { key: 'customerEmail', label: 'Customer Email' },
      { key: 'status', label: 'Status', choices: ['scheduled', 'cancelled', 'completed'],
        helpText: 'Optional: only appointments in this state.' },
    ],
    perform: async (z, bundle) => {
      eitherPhoneOrEmail(z, bundle.inputData, 'customerPhone', 'customerEmail');
      return unwrap(z, await z.request({ url: api(bundle, '/appointments'),
        params: query(bundle.inputData, ['customerPhone', 'customerEmail', 'status']) }));
    },
    sample: appointmentSample,
    outputFields: appointmentFields,
  },
};

const findAvailableTimes = {
  key: 'find_available_times',
  noun: 'Available Time',
  display: { label: 'Find Available Times',
    description: 'Finds the owner\'s next free times for an appointment of a given length.' },
  operation: {
    inputFields: [
      { key: 'duration', label: 'Duration (minutes)', type: 'integer', required: true, default: '30' },
      { key: 'from', label: 'Not Before', type: 'datetime', helpText: 'Optional; now when empty.' },
      { key: 'count', label: 'How Many', type: 'integer', default: '3', helpText: 'From 1 to 20.' },
    ],
    perform: async (z, bundle) => {
      const params = query(bundle.inputData, ['duration', 'from', 'count']);
      const slots = unwrap(z, await z.request({ url: api(bundle, '/availability/slots'), params }));
      // Each found time is also an item with an id, as Zapier expects of search results.
      return slots.map((slot) => ({ id: slot.start, ...slot }));
    },
    sample: { id: '2025-12-23T14:00:00.000Z', start: '2025-12-23T14:00:00.000Z', end: '2025-12-23T14:30:00.000Z' },
    outputFields: [
      { key: 'start', label: 'Start', type: 'datetime' },
      { key: 'end', label: 'End', type: 'datetime' },
    ],
  },
};

module.exports = [findCustomer, findAppointment, findAvailableTimes];
