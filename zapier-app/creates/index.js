'use strict';

// Actions: book, reschedule, cancel and complete appointments through Callnfy's key-authenticated
// API (/zapier/v1). Each answers the appointment as Callnfy has it afterwards.
const { api, unwrap } = require('../http');
const { appointmentFields, appointmentSample } = require('../triggers');

const truthy = (value) => value === true || String(value).toLowerCase() === 'true';
const given = (value) => value !== undefined && value !== null && value !== '';

const appointmentId = {
  key: 'appointmentId',
  label: 'Appointment ID',
  required: true,
  helpText: 'The appointment\'s Callnfy ID (`appt_…`), from a Callnfy trigger or the Find Appointment search.',
};
const requireFree = {
  key: 'requireFree',
  label: 'Only if the slot is free',
  type: 'boolean',
  default: 'false',
  helpText: 'Yes: book only when the owner is free then (working hours, buffers, notice, other appointments and ' +
    'busy calendar events); otherwise the step fails and says what is in the way.',
};

const action = ({ key, label, description, inputFields, request }) => ({
  key,
  noun: 'Appointment',
  display: { label, description },
  operation: {
    inputFields,
    perform: async (z, bundle) => unwrap(z, await z.request(request(bundle))),
    sample: appointmentSample,
    outputFields: appointmentFields,
  },
});

const createAppointment = action({
  key: 'create_appointment',
  label: 'Create Appointment',
  description: 'Books an appointment in Callnfy (finding or creating the customer by phone).',
  inputFields: [
    { key: 'customerName', label: 'Customer Name', required: true },
    { key: 'customerPhone', label: 'Customer Phone', required: true,
      helpText: 'International format is best, e.g. `+44 7700 900123`.' },
    { key: 'customerEmail', label: 'Customer Email' },
    { key: 'scheduledAt', label: 'Start Time', type: 'datetime', required: true },
    { key: 'duration', label: 'Duration (minutes)', type: 'integer', default: '30',
      helpText: 'From 1 to 1440 minutes.' },
    { key: 'notes', label: 'Notes', type: 'text' },
    requireFree,
    { key: 'idempotencyKey', label: 'Idempotency Key',
      helpText: 'Optional. A value unique to what triggered this booking (a form submission\'s ID, say): if ' +
        'the step runs again with the same key, Callnfy answers the appointment it already booked instead ' +
        'of booking twice.' },
  ],
  request: (bundle) => {
    const input = bundle.inputData;
    const body = { customerName: input.customerName, customerPhone: input.customerPhone,
      scheduledAt: input.scheduledAt, requireFree: truthy(input.requireFree) };
    if (given(input.customerEmail)) body.customerEmail = input.customerEmail;
    if (given(input.duration)) body.duration = Number(input.duration);
    if (given(input.notes)) body.notes = input.notes;
    if (given(input.idempotencyKey)) body.idempotencyKey = String(input.idempotencyKey);
    return { url: api(bundle, '/appointments'), method: 'POST', body };
  },
});

const path = (bundle, verb) => api(bundle, `/appointments/${encodeURIComponent(bundle.inputData.appointmentId)}/${verb}`);

const rescheduleAppointment = action({
  key: 'reschedule_appointment',
  label: 'Reschedule Appointment',
  description: 'Moves a scheduled appointment to a new time (and length).',
  inputFields: [
    appointmentId,
    { key: 'scheduledAt', label: 'New Start Time', type: 'datetime', required: true },
    { key: 'duration', label: 'New Duration (minutes)', type: 'integer', helpText: 'Leave empty to keep it.' },
    requireFree,
  ],
  request: (bundle) => {
    const input = bundle.inputData;
    const body = { scheduledAt: input.scheduledAt, requireFree: truthy(input.requireFree) };
    if (given(input.duration)) body.duration = Number(input.duration);
    return { url: path(bundle, 'reschedule'), method: 'POST', body };
  },
});

const cancelAppointment = action({
  key: 'cancel_appointment',
  label: 'Cancel Appointment',
  description: 'Cancels a scheduled appointment (its Google Calendar event follows).',
  inputFields: [appointmentId, { key: 'reason', label: 'Reason', helpText: 'Optional; shown in Callnfy.' }],
  request: (bundle) => ({
    url: path(bundle, 'cancel'),
    method: 'POST',
    body: given(bundle.inputData.reason) ? { reason: bundle.inputData.reason } : {},
  }),
});

const completeAppointment = action({
  key: 'complete_appointment',
  label: 'Complete Appointment',
  description: 'Marks a scheduled appointment as completed.',
  inputFields: [appointmentId, { key: 'duration', label: 'Actual Duration (minutes)', type: 'integer',
    helpText: 'Optional: how long it really took.' }],
  request: (bundle) => ({
    url: path(bundle, 'complete'),
    method: 'POST',
    body: given(bundle.inputData.duration) ? { duration: Number(bundle.inputData.duration) } : {},
  }),
});

module.exports = [createAppointment, rescheduleAppointment, cancelAppointment, completeAppointment];
