// Shared set-up for the provider suites (web_push, apns, fcm, expo, one_signal, pusher_beams,
// pushpad): Herald trusting the test CA the loopback mocks serve with, integrations, subscribers
// with device tokens, a workflow, triggers and the records they leave, all through Herald's public
// API; and the checks several suites make alike (a topic's fan-out, refused credentials).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { novu, raw, startHerald, uid } from './harness.mjs';
import { FAST_RETRY_ENV, createPushWorkflow, query, waitForMessages } from './push_fixtures.mjs';
import { sharedTlsAuthority } from './tls_authority.mjs';

export { waitForMessages };

/** Herald trusting the mocks' test CA, with short retries. Resolves {h, sdk, pki}. */
export async function startHeraldForMocks(env = {}) {
  const pki = await sharedTlsAuthority();
  const h = await startHerald({
    env: { ...FAST_RETRY_ENV, HERALD_CA_FILE: pki.ca.certPath, HERALD_RETRY_ATTEMPTS: '5', ...env },
  });
  return { h, sdk: novu(h), pki };
}

/**
 * Herald for a provider suite (startHeraldForMocks(env)), its loopback mock (`startMock(pki)`
 * resolves it) and the push workflow. Resolves {h, sdk, pki, mock, wf}; stopProviderSuite ends it.
 */
export async function startProviderSuite(startMock, env = {}) {
  const { h, sdk, pki } = await startHeraldForMocks(env);
  try {
    const mock = await startMock(pki);
    return { h, sdk, pki, mock, wf: await createWorkflow(sdk) };
  } catch (err) {
    await h.stop();
    throw err;
  }
}

/** Stops what startProviderSuite started (neither is there when it failed). */
export async function stopProviderSuite(h, mock) {
  if (h) await h.stop();
  if (mock) await mock.close();
}

/** A fresh P-256 key pair as an APNs .p8 would hold it: {privatePem (PKCS#8), publicPem}. */
export function makeP8() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }),
  };
}

/** POST /v1/integrations (raw: Herald's own credential fields pass too). Resolves the result. */
export async function createIntegration(h, providerId, credentials, { active = true, identifier = uid(providerId) } = {}) {
  const res = await raw(h, 'POST', '/v1/integrations', {
    body: { providerId, channel: 'push', identifier, name: identifier, active, credentials },
  });
  assert.equal(res.status, 201, `create ${providerId} integration: ${res.text}`);
  return res.json.data;
}

/** A subscriber with `tokens` on `integration`. Resolves the subscriberId. */
export async function createSubscriberWithTokens(h, integration, tokens, { firstName = 'Ann' } = {}) {
  const subscriberId = uid('sub');
  let res = await raw(h, 'POST', '/v2/subscribers', { body: { subscriberId, firstName } });
  assert.equal(res.status, 201, res.text);
  if (tokens.length) await setTokens(h, subscriberId, integration, tokens);
  return subscriberId;
}

/** PUT /v1/subscribers/{id}/credentials (replace) or PATCH (append). */
export async function setTokens(h, subscriberId, integration, tokens, { append = false } = {}) {
  const res = await putTokens(h, subscriberId, integration, tokens, { append });
  assert.equal(res.status, 200, `set tokens: ${res.text}`);
  return res.json.data;
}

/** setTokens' request, its response unchecked (for the tokens Herald refuses). */
export function putTokens(h, subscriberId, integration, tokens, { append = false } = {}) {
  return raw(h, append ? 'PATCH' : 'PUT', `/v1/subscribers/${encodeURIComponent(subscriberId)}/credentials`, {
    body: {
      providerId: integration.providerId,
      integrationIdentifier: integration.identifier,
      credentials: { deviceTokens: tokens },
    },
  });
}

/** The subscriber as GET /v1/subscribers/{id} shows it. */
export async function getSubscriber(h, subscriberId) {
  const res = await raw(h, 'GET', `/v1/subscribers/${encodeURIComponent(subscriberId)}`);
  assert.equal(res.status, 200, res.text);
  return res.json.data;
}

/** The device tokens the subscriber's channels list for `providerId` (Novu's shape). */
export async function listedTokens(h, subscriberId, providerId) {
  const s = await getSubscriber(h, subscriberId);
  return [...(s.channels ?? []), ...(s.webPushChannels ?? [])]
    .filter((c) => c.providerId === providerId)
    .flatMap((c) => c.credentials?.deviceTokens ?? []);
}

/** GET /v1/subscribers/{id}/devices -> data[]. */
export async function deviceRecords(h, subscriberId) {
  const res = await raw(h, 'GET', `/v1/subscribers/${encodeURIComponent(subscriberId)}/devices`);
  assert.equal(res.status, 200, res.text);
  return res.json.data;
}

/** A workflow with one push step: title "Hi {{subscriber.firstName}}", body "Order {{payload.orderId}}". */
export function createWorkflow(sdk) {
  return createPushWorkflow(sdk);
}

/** POST /v1/events/trigger; resolves the transactionId. */
export async function trigger(h, workflow, to, payload = {}, overrides = undefined) {
  const res = await raw(h, 'POST', '/v1/events/trigger', {
    body: { name: workflow.workflowId, to, payload, ...(overrides ? { overrides } : {}) },
  });
  assert.equal(res.status, 201, `trigger: ${res.text}`);
  return res.json.data.transactionId;
}

/** Messages of a transaction once all are final (sent or error). */
export function settled(h, tx, count, timeoutMs = 15_000) {
  return waitForMessages(h, tx, { count, timeoutMs, limit: Math.max(count, 10) });
}

/** Every message of several transactions, once all are final. */
export async function settledMany(h, txs, perTx, timeoutMs = 60_000) {
  const all = [];
  for (const tx of txs) all.push(...await settled(h, tx, perTx, timeoutMs));
  return all;
}

/**
 * One subscriber a token (`tokens`, on `integration`) in a new topic, triggered once
 * ({orderId: 9}): resolves the messages once all have settled, every one of them sent.
 * `firstName(i)` names the i-th subscriber.
 */
export async function sendToNewTopic(h, sdk, wf, integration, tokens, { firstName = () => 'Ann' } = {}) {
  const topicKey = uid('topic');
  await sdk.topics.create({ key: topicKey, name: `${integration.providerId} topic` });
  const subscriberIds = [];
  for (const [i, token] of tokens.entries()) {
    subscriberIds.push(await createSubscriberWithTokens(h, integration, [token], { firstName: firstName(i) }));
  }
  await sdk.topics.subscriptions.create({ subscriberIds }, topicKey);
  const res = await raw(h, 'POST', '/v1/events/trigger', {
    body: { name: wf.workflowId, to: [{ type: 'Topic', topicKey }], payload: { orderId: 9 } },
  });
  assert.equal(res.status, 201, res.text);
  const messages = await settled(h, res.json.data.transactionId, tokens.length, 30_000);
  assert.equal(messages.filter((m) => m.status === 'sent').length, tokens.length);
  return messages;
}

/**
 * Credentials the provider refuses: a message to `token` through `integration` fails as `errorId`
 * at its first attempt and the token is kept; Test Connection fails with the same reason and Send
 * Test (to `testToken`) as failed-config. Resolves the message.
 */
export async function expectRefusedCredentials(h, wf, integration, { token, testToken, errorId }) {
  const subscriberId = await createSubscriberWithTokens(h, integration, [token]);
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 3 }), 1);
  assert.deepEqual([m.status, m.errorId, m.attempts], ['error', errorId, 1], JSON.stringify(m));
  assert.deepEqual(await listedTokens(h, subscriberId, integration.providerId), [token]);
  const probe = await testConnection(h, integration);
  assert.deepEqual([probe.ok, probe.reason], [false, errorId], JSON.stringify(probe));
  assert.equal((await sendTest(h, integration, testToken)).verdict, 'failed-config');
  return m;
}

/** POST /v1/integrations/{id}/test -> data ({ok, detail, reason?}). */
export async function testConnection(h, integration) {
  const res = await raw(h, 'POST', `/v1/integrations/${integration._id}/test`, { body: {} });
  assert.equal(res.status, 200, `test connection: ${res.text}`);
  return res.json.data;
}

/** POST /v1/integrations/{id}/send-test -> data ({ok, verdict, reason, detail, providerResponseId}). */
export async function sendTest(h, integration, token, { title = 'Test', body = 'Hello' } = {}) {
  const res = await raw(h, 'POST', `/v1/integrations/${integration._id}/send-test`, { body: { token, title, body } });
  assert.equal(res.status, 200, `send test: ${res.text}`);
  return res.json.data;
}

export { query, raw, uid };
