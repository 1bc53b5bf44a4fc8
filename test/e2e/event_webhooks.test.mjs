// Event webhooks through Herald's public API: endpoints, message.sent / message.failed /
// device.removed as Novu shapes them, signed the Standard Webhooks way and verified with the
// `standardwebhooks` and `svix` libraries; a receiver that is down for a while gets everything
// afterwards, in order per message; one removal for many failures on one dead token. Also the
// environment's devices list (GET /v1/devices) and the inactivity sweep. FCM's loopback mock
// supplies the provider outcomes (src/providers/fcm/fcm_mock.mjs).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { startFcmMock } from '../../src/providers/fcm/fcm_mock.mjs';
import { startHerald } from './harness.mjs';
import {
  createIntegration, createSubscriberWithTokens, deviceRecords, raw, settled, startProviderSuite,
  stopProviderSuite, trigger, uid,
} from './provider_fixtures.mjs';
import { startReceiver, waitFor } from './receiver.mjs';

const T = { timeout: 60_000 };
let h;
let sdk;
let mock;
let integ;
let wf;
const receivers = [];

before(async () => {
  ({ h, sdk, mock, wf } = await startProviderSuite((pki) => startFcmMock({ tls: pki.server }), {
    HERALD_WEBHOOK_RETRY_BASE_MS: '50', HERALD_WEBHOOK_RETRY_MAX_MS: '200',
  }));
  const account = mock.makeServiceAccount({ projectId: 'herald-events' });
  integ = await createIntegration(h, 'fcm', { serviceAccount: account.json, baseUrl: mock.origin });
}, { timeout: 30_000 });

after(async () => {
  for (const r of receivers) await r.close();
  await stopProviderSuite(h, mock);
});

const device = () => uid('fcm-token');

async function receiver(behave) {
  const r = await startReceiver({ behave, path: '/events' });
  receivers.push(r);
  return r;
}

async function addEndpoint(url, eventTypes) {
  const res = await raw(h, 'POST', '/v1/webhooks/endpoints', { body: { url, eventTypes } });
  assert.equal(res.status, 201, res.text);
  return res.json.data;
}

async function removeEndpoint(id) {
  const res = await raw(h, 'DELETE', `/v1/webhooks/endpoints/${id}`);
  assert.equal(res.status, 200, res.text);
}

// The headers both libraries read, from a received request.
const headersOf = (req) => Object.fromEntries(
  ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature']
    .map((k) => [k, req.headers[k]]));

// Verifies with both libraries and returns the event.
function verified(req, secret) {
  const event = new StandardWebhook(secret).verify(req.text, headersOf(req));
  assert.deepEqual(new SvixWebhook(secret).verify(req.text, headersOf(req)), event);
  return event;
}

const eventsFor = (r, secret, predicate = () => true) =>
  r.requests.filter((q) => q.outcome?.status === 200).map((q) => verified(q, secret)).filter(predicate);

test('endpoints: created with a whsec_ secret shown once, listed masked, deleted; bad input is a 400', T, async () => {
  const created = await addEndpoint('http://127.0.0.1:9/events', ['message.failed', 'device.removed']);
  assert.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(created.secret.slice(6), 'base64').length, 32);
  assert.deepEqual(created.eventTypes, ['message.failed', 'device.removed']);
  const listed = (await raw(h, 'GET', '/v1/webhooks/endpoints')).json.data;
  const mine = listed.find((e) => e._id === created._id);
  assert.equal(mine.url, created.url);
  assert.ok(!mine.secret.includes(created.secret.slice(6, 20)), 'the secret is masked');
  assert.equal((await raw(h, 'GET', '/v1/webhooks/endpoints', { key: h.prodKey })).json.data.length, 0);
  await removeEndpoint(created._id);
  assert.equal((await raw(h, 'DELETE', `/v1/webhooks/endpoints/${created._id}`)).status, 404);

  for (const [body, includes] of [
    [{ url: 'https://example.com/x', eventTypes: ['message.opened'] }, 'unknown event type'],
    [{ url: 'https://example.com/x', eventTypes: 'message.sent' }, 'eventTypes'],
    [{ url: 'not a url' }, 'url'],
    [{ url: 'https://user:pass@example.com/x' }, 'password'],
    [{}, 'url'],
    [{ url: 'https://example.com/x', secret: 'mine' }, 'secret'],
  ]) {
    const res = await raw(h, 'POST', '/v1/webhooks/endpoints', { body });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.ok(JSON.stringify(res.json).includes(includes), res.text);
  }
});

test('non-https and private targets are refused unless HERALD_ALLOW_PRIVATE_TARGETS=1', T, async () => {
  const strict = await startHerald({ env: { HERALD_ALLOW_PRIVATE_TARGETS: undefined } });
  try {
    for (const url of ['http://example.com/events', 'https://127.0.0.1/events', 'https://localhost/x']) {
      const res = await raw(strict, 'POST', '/v1/webhooks/endpoints', { body: { url } });
      assert.equal(res.status, 400, `${url}: ${res.text}`);
    }
    const ok = await raw(strict, 'POST', '/v1/webhooks/endpoints', { body: { url: 'https://example.com/events' } });
    assert.equal(ok.status, 201, ok.text);
  } finally {
    await strict.stop();
  }
});

test('message.sent, message.failed (token_invalid) and device.removed arrive signed, in order per message', T, async () => {
  const r = await receiver();
  const endpoint = await addEndpoint(r.url);
  try {
    const [ok, gone] = [device(), device()];
    mock.setToken(gone, 'UNREGISTERED');
    const subscriberId = await createSubscriberWithTokens(h, integ, [ok, gone]);
    const tx = await trigger(h, wf, subscriberId, { orderId: 3 });
    const messages = await settled(h, tx, 2);
    const mine = (e) => e.data?.object?.transactionId === tx;
    await waitFor(() => eventsFor(r, endpoint.secret, mine).length >= 3, 10_000,
      { describe: () => JSON.stringify(r.requests.map((q) => q.json?.type)) });
    const events = eventsFor(r, endpoint.secret, mine);
    const sent = events.find((e) => e.type === 'message.sent');
    assert.equal(sent.object, 'message');
    assert.equal(sent.data.object.deviceToken, ok);
    assert.equal(sent.data.object.subscriberId, subscriberId);
    assert.equal(sent.data.object.providerId, 'fcm');
    assert.equal(sent.data.object.providerResponseId,
      messages.find((m) => m.status === 'sent').providerResponseId);
    assert.ok(!('payload' in sent.data.object));
    const failed = events.find((e) => e.type === 'message.failed');
    assert.deepEqual(failed.data.error.push, { reason: 'token_invalid', deviceToken: gone });
    assert.equal(failed.data.error.code, 'UNREGISTERED');
    const removed = events.find((e) => e.type === 'device.removed');
    assert.equal(removed.object, 'device');
    assert.equal(removed.data.object.deviceToken, gone);
    assert.equal(removed.data.object.status, 'unsubscribed');
    assert.equal(removed.data.object.reason, 'UNREGISTERED');
    // One message's events in the order they happened.
    assert.ok(events.indexOf(failed) < events.indexOf(removed));
    assert.match(sent.id, /^evt_[0-9a-f]{24}$/);
    for (const e of events) assert.ok(Date.parse(e.timestamp) > 0);
  } finally {
    await removeEndpoint(endpoint._id);
  }
});

test('a tampered body, another secret or an old timestamp fail verification', T, async () => {
  const r = await receiver();
  const endpoint = await addEndpoint(r.url, ['message.sent']);
  try {
    const subscriberId = await createSubscriberWithTokens(h, integ, [device()]);
    await settled(h, await trigger(h, wf, subscriberId, { orderId: 4 }), 1);
    await waitFor(() => r.requests.length >= 1, 10_000);
    const req = r.requests[0];
    verified(req, endpoint.secret);
    const headers = headersOf(req);
    const tampered = req.text.replace('"message.sent"', '"message.failed"');
    for (const Lib of [StandardWebhook, SvixWebhook]) {
      assert.throws(() => new Lib(endpoint.secret).verify(tampered, headers));
      assert.throws(() => new Lib(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(req.text, headers));
    }
    // Replayed ten minutes later: both libraries refuse timestamps older than five minutes.
    const realNow = Date.now;
    Date.now = () => realNow() + 10 * 60_000;
    try {
      for (const Lib of [StandardWebhook, SvixWebhook]) {
        assert.throws(() => new Lib(endpoint.secret).verify(req.text, headers));
      }
    } finally {
      Date.now = realNow;
    }
  } finally {
    await removeEndpoint(endpoint._id);
  }
});

test('a receiver down for its first attempts gets every event afterwards, in order per message', T, async () => {
  let down = 0;
  const r = await receiver(() => (++down <= 4 ? 503 : undefined));
  const endpoint = await addEndpoint(r.url, ['message.failed', 'device.removed']);
  try {
    const tokens = [device(), device(), device()];
    for (const t of tokens) mock.setToken(t, 'UNREGISTERED');
    const subscriberId = await createSubscriberWithTokens(h, integ, tokens);
    await settled(h, await trigger(h, wf, subscriberId, { orderId: 5 }), 3);
    await waitFor(() => eventsFor(r, endpoint.secret).length >= 6, 20_000,
      { describe: () => `${r.requests.length} requests` });
    const events = eventsFor(r, endpoint.secret);
    assert.equal(events.length, 6);
    assert.ok(r.requests.filter((q) => q.outcome?.status === 503).length === 4);
    for (const t of tokens) {
      const mine = events.filter((e) => (e.data.error?.push?.deviceToken ?? e.data.object.deviceToken) === t);
      assert.deepEqual(mine.map((e) => e.type), ['message.failed', 'device.removed']);
    }
    // A retry carries the same webhook-id (receivers de-duplicate by it).
    const ids = new Set(r.requests.map((q) => q.headers['webhook-id']));
    assert.equal(ids.size, 6);
  } finally {
    await removeEndpoint(endpoint._id);
  }
});

test('20 failures at once on one dead token: one removal, one device.removed', T, async () => {
  const r = await receiver();
  const endpoint = await addEndpoint(r.url, ['device.removed']);
  try {
    const dead = device();
    mock.setToken(dead, 'UNREGISTERED');
    const subscriberId = await createSubscriberWithTokens(h, integ, [dead]);
    // A workflow of 20 push steps: one trigger plans 20 messages to the token at once, and they
    // are in flight together.
    const workflowId = uid('wf20');
    const created = await sdk.workflows.create({
      name: workflowId, workflowId, active: true,
      steps: Array.from({ length: 20 }, (_, i) => ({
        name: `Push ${i}`, type: 'push', controlValues: { subject: 'T', body: `B ${i}` },
      })),
    });
    await settled(h, await trigger(h, created.result, subscriberId, {}), 20);
    await waitFor(() => r.requests.length >= 1, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));  // anything more would have come by now
    assert.equal(eventsFor(r, endpoint.secret).length, 1);
    const records = await deviceRecords(h, subscriberId);
    assert.equal(records.length, 1);
    assert.equal(records[0].status, 'unsubscribed');
  } finally {
    await removeEndpoint(endpoint._id);
  }
});

test('GET /v1/devices: every token of the environment, masked, filtered and paginated', T, async () => {
  const [a, b, gone] = [device(), device(), device()];
  mock.setToken(gone, 'UNREGISTERED');
  const subscriberId = await createSubscriberWithTokens(h, integ, [a, b, gone]);
  await settled(h, await trigger(h, wf, subscriberId, { orderId: 6 }), 3);
  const list = async (q) => {
    const res = await raw(h, 'GET', `/v1/devices?${new URLSearchParams(q)}`);
    assert.equal(res.status, 200, res.text);
    return res.json;
  };
  const all = await list({ subscriberId });
  assert.equal(all.totalCount, 3);
  for (const d of all.data) {
    assert.equal(d.subscriberId, subscriberId);
    assert.equal(d.providerId, 'fcm');
    assert.equal(d._integrationId, integ._id);
    assert.ok(!d.token.includes(a) && d.token.includes('...'), d.token);
    assert.ok(d.createdAt && d._id);
  }
  const active = all.data.filter((d) => d.status === 'active');
  assert.equal(active.length, 2);
  assert.ok(active.every((d) => d.lastActiveAt));
  const removed = all.data.find((d) => d.status === 'unsubscribed');
  assert.equal(removed.lastFailureReason, 'UNREGISTERED');
  assert.equal((await list({ subscriberId, status: 'unsubscribed' })).data.length, 1);
  assert.equal((await list({ subscriberId, providerId: 'apns' })).data.length, 0);
  const first = await list({ subscriberId, limit: '2' });
  assert.equal(first.data.length, 2);
  const second = await list({ subscriberId, limit: '2', after: first.next });
  assert.equal(second.data.length, 1);
  assert.equal(second.next, null);
  assert.equal(new Set([...first.data, ...second.data].map((d) => d._id)).size, 3);
  for (const q of [{ status: 'dead' }, { providerId: 'carrier-pigeon' }, { limit: '0' }, { after: 'x' }]) {
    const res = await raw(h, 'GET', `/v1/devices?${new URLSearchParams(q)}`);
    assert.equal(res.status, 400, `${JSON.stringify(q)}: ${res.text}`);
  }
});

test('a token no provider accepted for the inactivity period expires, with device.removed', T, async () => {
  const quick = await startHerald({ env: { HERALD_TOKEN_INACTIVE_SECONDS: '2' } });
  const r = await receiver();
  try {
    const res = await raw(quick, 'POST', '/v1/webhooks/endpoints', { body: { url: r.url, eventTypes: ['device.removed'] } });
    assert.equal(res.status, 201, res.text);
    const secret = res.json.data.secret;
    const hook = await createIntegration(quick, 'push-webhook', { webhookUrl: r.url, secretKey: 'k' });
    const subscriberId = await createSubscriberWithTokens(quick, hook, ['idle-token']);
    await waitFor(async () => (await deviceRecords(quick, subscriberId))[0]?.status === 'expired', 15_000);
    const [record] = await deviceRecords(quick, subscriberId);
    assert.equal(record.lastFailureReason, 'INACTIVE');
    await waitFor(() => eventsFor(r, secret).length === 1, 10_000);
    const [event] = eventsFor(r, secret);
    assert.equal(event.type, 'device.removed');
    assert.equal(event.data.object.deviceToken, 'idle-token');
    assert.equal(event.data.object.reason, 'INACTIVE');
    assert.equal(event.data.object.status, 'expired');
  } finally {
    await quick.stop();
  }
});
