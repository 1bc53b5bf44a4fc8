// Shared set-up for the delivery tests (delivery, faults, crash): a push-webhook
// integration pointing at a loopback receiver, a workflow with one push step,
// subscribers with device tokens, and polling of Herald's messages API.
import assert from 'node:assert/strict';
import { raw, uid } from './harness.mjs';
import { waitFor } from './receiver.mjs';

export const PW = 'push-webhook';
export const TITLE = 'Hi {{subscriber.firstName}}';
export const BODY = 'Order {{payload.orderId}}';

/** Server settings that keep retries and timeouts short enough for tests. */
export const FAST_RETRY_ENV = {
  HERALD_RETRY_BASE_MS: '50',
  HERALD_RETRY_MAX_MS: '500',
  HERALD_HTTP_TIMEOUT_MS: '1500',
};

/** Creates an active push-webhook integration (SDK); resolves its result (id, identifier). */
export async function createHookIntegration(sdk, webhookUrl, secretKey) {
  const identifier = uid('hook');
  const res = await sdk.integrations.create({
    providerId: PW,
    channel: 'push',
    name: identifier,
    identifier,
    active: true,
    credentials: { webhookUrl, secretKey },
  });
  assert.equal(res.result.identifier, identifier);
  return res.result;
}

/** Creates a workflow with one push step (SDK); resolves the workflow (workflowId, steps[0].stepId). */
export async function createPushWorkflow(sdk, { active = true, subject = TITLE, body = BODY } = {}) {
  const workflowId = uid('wf');
  const res = await sdk.workflows.create({
    name: `Workflow ${workflowId}`,
    workflowId,
    active,
    steps: [{ name: 'Push', type: 'push', controlValues: { subject, body } }],
  });
  assert.equal(res.result.workflowId, workflowId);
  return res.result;
}

/**
 * Creates a subscriber and, if tokens are given, sets them on `integration`.
 * Resolves the subscriberId.
 */
export async function createSubscriber(sdk, {
  subscriberId = uid('sub'), firstName = 'Ann', tokens = [], integration,
} = {}) {
  await sdk.subscribers.create({ subscriberId, firstName });
  if (tokens.length) {
    await sdk.subscribers.credentials.update({
      providerId: PW,
      ...(integration ? { integrationIdentifier: integration.identifier } : {}),
      credentials: { deviceTokens: tokens },
    }, subscriberId);
  }
  return subscriberId;
}

/** Query string with repeated keys for arrays: {transactionId: [a, b]} -> transactionId=a&transactionId=b. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    for (const item of [].concat(v)) q.append(k, String(item));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Raw GET /v1/messages; asserts 200 and resolves the parsed body. */
export async function rawMessages(h, params, { key = h.devKey } = {}) {
  const res = await raw(h, 'GET', `/v1/messages${query({ channel: 'push', page: 0, limit: 50, ...params })}`, { key });
  assert.equal(res.status, 200, `GET /v1/messages: ${res.status} ${res.text?.slice(0, 1000)}`);
  assert.ok(Array.isArray(res.json?.data), `messages page has data[]: ${res.text?.slice(0, 1000)}`);
  return res.json;
}

/** A message has reached its final state (delivered or failed for good). */
export const isFinal = (m) => m.status === 'sent' || m.status === 'error';

/**
 * Polls raw GET /v1/messages?transactionId=tx until there are `count` messages
 * and `until(messages)` holds (default: every message is final). Resolves the messages.
 */
export async function waitForMessages(h, tx, {
  count, until = (ms) => ms.every(isFinal), timeoutMs = 10_000, key = h.devKey, limit,
} = {}) {
  let last = [];
  await waitFor(async () => {
    last = (await rawMessages(h, { transactionId: tx, limit }, { key })).data;
    return (count === undefined || last.length === count) && last.length > 0 && until(last);
  }, timeoutMs, {
    interval: 50,
    describe: () => `transactionId ${tx}: ${JSON.stringify(last.map((m) => ({
      _id: m._id, token: m.deviceTokens, status: m.status, deliveryStatus: m.deliveryStatus,
      attempts: m.attempts, errorText: m.errorText,
    })))}`,
  });
  return last;
}

/** GET /v1/subscribers/{id}/devices -> data[]. */
export async function devices(h, subscriberId, { key = h.devKey } = {}) {
  const res = await raw(h, 'GET', `/v1/subscribers/${encodeURIComponent(subscriberId)}/devices`, { key });
  assert.equal(res.status, 200, res.text);
  assert.ok(Array.isArray(res.json?.data), `devices body is {data:[...]}: ${res.text}`);
  return res.json.data;
}

export function isDate(s) {
  return typeof s === 'string' && !Number.isNaN(Date.parse(s));
}
