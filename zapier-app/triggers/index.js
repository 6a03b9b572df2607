'use strict';

// The triggers and the fields of each (the spec's payloads; extras documented in docs/api.md).
const { restHookTrigger } = require('./hook');

const appointmentFields = [
  { key: 'id', label: 'Appointment ID' },
  { key: 'customerId', label: 'Customer ID' },
  { key: 'customerName', label: 'Customer Name' },
  { key: 'customerPhone', label: 'Customer Phone' },
  { key: 'customerEmail', label: 'Customer Email' },
  { key: 'scheduledAt', label: 'Scheduled At', type: 'datetime' },
  { key: 'duration', label: 'Duration (minutes)', type: 'integer' },
  { key: 'status', label: 'Status' },
  { key: 'notes', label: 'Notes' },
  { key: 'source', label: 'Source (callnfy or google)' },
];

const appointmentSample = {
  id: 'appt_00000000000000000000000000000003',
  customerId: 'cust_00000000000000000000000000000001',
  customerName: 'John Doe',
  customerPhone: '+447700900123',
  customerEmail: 'john@example.com',
  scheduledAt: '2025-12-23T14:00:00.000Z',
  duration: 30,
  status: 'scheduled',
  notes: 'First consultation',
  source: 'callnfy',
};

const newAppointment = restHookTrigger({
  key: 'new_appointment',
  event: 'appointment.created',
  noun: 'Appointment',
  label: 'New Appointment',
  description: 'Triggers when Callnfy books an appointment (or one is added in Google Calendar with two-way sync).',
  sample: appointmentSample,
  outputFields: appointmentFields,
});

const appointmentCancelled = restHookTrigger({
  key: 'appointment_cancelled',
  event: 'appointment.cancelled',
  noun: 'Appointment',
  label: 'Appointment Cancelled',
  description: 'Triggers when an appointment is cancelled (in Callnfy, or in Google Calendar with two-way sync).',
  sample: {
    ...appointmentSample,
    status: 'cancelled',
    cancelledAt: '2025-12-22T10:50:00.000Z',
    reason: 'Customer requested cancellation',
  },
  outputFields: [
    ...appointmentFields,
    { key: 'cancelledAt', label: 'Cancelled At', type: 'datetime' },
    { key: 'reason', label: 'Cancellation Reason' },
  ],
});

const appointmentRescheduled = restHookTrigger({
  key: 'appointment_rescheduled',
  event: 'appointment.rescheduled',
  noun: 'Appointment',
  label: 'Appointment Rescheduled',
  description: 'Triggers when an appointment\'s time or length changes (in Callnfy, or in Google Calendar with ' +
    'two-way sync).',
  sample: {
    ...appointmentSample,
    scheduledAt: '2025-12-23T15:30:00.000Z',
    previousScheduledAt: '2025-12-23T14:00:00.000Z',
    previousDuration: 30,
  },
  outputFields: [
    ...appointmentFields,
    { key: 'previousScheduledAt', label: 'Previous Time', type: 'datetime' },
    { key: 'previousDuration', label: 'Previous Duration (minutes)', type: 'integer' },
  ],
});

const appointmentCompleted = restHookTrigger({
  key: 'appointment_completed',
  event: 'appointment.completed',
  noun: 'Appointment',
  label: 'Appointment Completed',
  description: 'Triggers when an appointment is marked completed.',
  sample: { ...appointmentSample, status: 'completed', completedAt: '2025-12-22T11:00:00.000Z' },
  outputFields: [...appointmentFields, { key: 'completedAt', label: 'Completed At', type: 'datetime' }],
});

const newCall = restHookTrigger({
  key: 'new_call',
  event: 'call.received',
  noun: 'Call',
  label: 'New Call',
  description: 'Triggers when Callnfy answers a call.',
  sample: {
    id: 'call_00000000000000000000000000000002',
    customerId: 'cust_00000000000000000000000000000001',
    customerName: 'John Doe',
    customerPhone: '+447700900123',
    duration: 180,
    recordingUrl: 'https://api.callnfy.com/recordings/call_789.mp3',
    transcript: 'Full call transcript...',
    sentiment: 'positive',
    receivedAt: '2025-12-22T11:05:00.000Z',
  },
  outputFields: [
    { key: 'id', label: 'Call ID' },
    { key: 'customerId', label: 'Customer ID' },
    { key: 'customerName', label: 'Customer Name' },
    { key: 'customerPhone', label: 'Customer Phone' },
    { key: 'duration', label: 'Duration (seconds)', type: 'integer' },
    { key: 'recordingUrl', label: 'Recording URL' },
    { key: 'transcript', label: 'Transcript' },
    { key: 'sentiment', label: 'Sentiment (positive, neutral or negative)' },
    { key: 'receivedAt', label: 'Received At', type: 'datetime' },
  ],
});

module.exports = {
  appointmentFields,
  appointmentSample,
  triggers: [newAppointment, appointmentRescheduled, appointmentCancelled, appointmentCompleted, newCall],
};
