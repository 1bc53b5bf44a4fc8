// Web Push through Herald to a loopback push service (src/providers/web_push/web_push_mock.mjs)
// that checks every VAPID token and decrypts every body with the independent `http_ece`
// package: what a service worker receives, dead subscriptions, retries, one VAPID JWT per push
// service and connection reuse, the public-key route, Test Connection and Send Test.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeVapidKeys, startWebPushMock } from '../../src/providers/web_push/web_push_mock.mjs';
import {
  createIntegration, createSubscriberWithTokens, createWorkflow, deviceRecords, listedTokens,
  raw, sendTest, setTokens, settled, settledMany, startHeraldForMocks, testConnection, trigger,
} from './provider_fixtures.mjs';
import { sleep, waitFor } from './receiver.mjs';

const T = { timeout: 60_000 };
let h;
let sdk;
let mock;
let vapid;
let integ;
let wf;

before(async () => {
  ({ h, sdk } = await startHeraldForMocks());
  const pki = await (await import('./tls_authority.mjs')).sharedTlsAuthority();
  mock = await startWebPushMock({ tls: pki.server });
  vapid = makeVapidKeys();
  integ = await createIntegration(h, 'web-push', {
    apiKey: vapid.publicKey, secretKey: vapid.privateKey, from: 'mailto:ops@example.com',
  });
  wf = await createWorkflow(sdk);
}, { timeout: 30_000 });

after(async () => {
  if (h) await h.stop();
  if (mock) await mock.close();
});

/** `n` subscriptions bound to the integration's VAPID key: [{id, token}]. */
function subscriptions(n) {
  return Array.from({ length: n }, () => {
    const { id, subscription } = mock.newSubscription({ vapidPublicKey: vapid.publicKey });
    return { id, token: JSON.stringify(subscription) };
  });
}

const receivedFor = (id) => mock.received.filter((r) => r.id === id);

test('a push a service worker can show: decrypted, VAPID-signed, headers from overrides', T, async () => {
  const subs = subscriptions(2);
  const subscriberId = await createSubscriberWithTokens(h, integ, subs.map((s) => s.token));
  const tx = await trigger(h, wf, subscriberId, { orderId: 7, deep: { a: [1, 2] } }, {
    'web-push': {
      icon: 'https://example.com/i.png', tag: 'order-7', url: 'https://example.com/o/7',
      actions: [{ action: 'open', title: 'Open' }], requireInteraction: true,
      urgency: 'high', topic: 'order7', ttl: 60,
    },
  });
  const messages = await settled(h, tx, 2);
  await waitFor(() => subs.every((s) => receivedFor(s.id).length === 1), 5_000);

  for (const s of subs) {
    const got = receivedFor(s.id)[0];
    const message = messages.find((m) => got.plaintext && JSON.parse(got.plaintext).data.messageId === m._id);
    assert.ok(message, `the push names its message: ${got.plaintext}`);
    assert.equal(message.status, 'sent');
    assert.ok(message.providerResponseId?.includes('/message/'), `Location kept: ${message.providerResponseId}`);
    const shown = JSON.parse(got.plaintext);
    assert.deepEqual(Object.keys(shown).slice(0, 3), ['title', 'body', 'data']);
    assert.equal(shown.title, 'Hi Ann');
    assert.equal(shown.body, 'Order 7');
    assert.deepEqual(shown.data, { orderId: 7, deep: { a: [1, 2] }, messageId: message._id },
      'the trigger payload without Novu\'s subscriber and step, plus messageId');
    assert.equal(shown.icon, 'https://example.com/i.png');
    assert.equal(shown.tag, 'order-7');
    assert.equal(shown.url, 'https://example.com/o/7');
    assert.deepEqual(shown.actions, [{ action: 'open', title: 'Open' }]);
    assert.equal(shown.requireInteraction, true);
    assert.equal(Number(got.headers.ttl), 60);
    assert.equal(got.headers.urgency, 'high');
    assert.equal(got.headers.topic, 'order7');
    assert.equal(got.headers['content-encoding'], 'aes128gcm');
    assert.equal(got.vapid.claims.aud, mock.origin);
    assert.equal(got.vapid.claims.sub, 'mailto:ops@example.com');
    assert.ok(got.vapid.claims.exp <= Date.now() / 1000 + 86_400);
    assert.equal(got.vapid.k, vapid.publicKey);
  }
});

test('a subscription the browser dropped is removed once and kept as unsubscribed; re-registering revives it', T, async () => {
  const [gone, kept] = subscriptions(2);
  const subscriberId = await createSubscriberWithTokens(h, integ, [gone.token, kept.token]);
  mock.unsubscribe(gone.id);

  const tx = await trigger(h, wf, subscriberId, { orderId: 1 });
  const messages = await settled(h, tx, 2);
  const failed = messages.filter((m) => m.status === 'error');
  assert.equal(failed.length, 1, JSON.stringify(messages));
  assert.equal(failed[0].errorId, 'SUBSCRIPTION_GONE');

  assert.deepEqual(await listedTokens(h, subscriberId, 'web-push'), [kept.token],
    'no longer in the subscriber\'s deviceTokens');
  const records = await deviceRecords(h, subscriberId);
  const dead = records.find((d) => d.token === gone.token);
  assert.equal(dead.status, 'unsubscribed');
  assert.equal(dead.lastFailureReason, 'SUBSCRIPTION_GONE');
  assert.ok(!Number.isNaN(Date.parse(dead.statusChangedAt)), `time of removal: ${JSON.stringify(dead)}`);
  assert.equal(records.find((d) => d.token === kept.token).status, 'active');

  // Not sent to again.
  const before = mock.requests.filter((r) => r.url.endsWith(`/${gone.id}`)).length;
  await settled(h, await trigger(h, wf, subscriberId, { orderId: 2 }), 1);
  await sleep(200);
  assert.equal(mock.requests.filter((r) => r.url.endsWith(`/${gone.id}`)).length, before);

  // The browser subscribes again with the same endpoint: active, and delivered to.
  const revived = mock.newSubscription({ vapidPublicKey: vapid.publicKey });
  const sameEndpoint = JSON.stringify({ ...JSON.parse(gone.token), keys: revived.subscription.keys });
  await setTokens(h, subscriberId, integ, [sameEndpoint], { append: true });
  assert.equal((await deviceRecords(h, subscriberId)).find((d) => d.endpoint === JSON.parse(gone.token).endpoint).status, 'active');
});

test('an integration with configurations.removeDeadTokens = false keeps a dropped subscription', T, async () => {
  const keeper = await createIntegration(h, 'web-push', {
    apiKey: vapid.publicKey, secretKey: vapid.privateKey, from: 'mailto:ops@example.com',
  });
  const res = await raw(h, 'PUT', `/v1/integrations/${keeper._id}`, { body: { configurations: { removeDeadTokens: false } } });
  assert.equal(res.status, 200, res.text);
  const [gone] = subscriptions(1);
  mock.unsubscribe(gone.id);
  const subscriberId = await createSubscriberWithTokens(h, keeper, [gone.token]);
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 9 }), 1);
  assert.equal(m.status, 'error');
  assert.equal(m.errorId, 'SUBSCRIPTION_GONE');
  assert.deepEqual(await listedTokens(h, subscriberId, 'web-push'), [gone.token]);
  const [record] = await deviceRecords(h, subscriberId);
  assert.equal(record.status, 'active');
  assert.equal(record.lastFailureReason, 'SUBSCRIPTION_GONE');
});

test('429 (Retry-After) and 5xx are retried; 413 fails for good', T, async () => {
  const [busy, broken, huge] = subscriptions(3);
  mock.script(busy.id, [{ status: 429, headers: { 'retry-after': '1' } }]);
  mock.script(broken.id, [{ status: 503 }, { status: 500 }]);
  mock.script(huge.id, [{ status: 413 }]);
  const subscriberId = await createSubscriberWithTokens(h, integ, [busy.token, broken.token, huge.token]);
  const started = Date.now();
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 3 }), 3);
  const byStatus = messages.map((m) => `${m.status}/${m.attempts}/${m.errorId ?? ''}`).sort();
  assert.deepEqual(byStatus, ['error/1/PAYLOAD_TOO_LARGE', 'sent/2/', 'sent/3/'], JSON.stringify(messages));
  assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was waited for');
  assert.equal(receivedFor(busy.id).length, 1);
  assert.equal(receivedFor(broken.id).length, 1);
});

test('a payload too large for one record fails before it is sent', T, async () => {
  const [s] = subscriptions(1);
  const subscriberId = await createSubscriberWithTokens(h, integ, [s.token]);
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 4, blob: 'x'.repeat(4000) }), 1);
  assert.equal(m.status, 'error');
  assert.equal(m.errorId, 'PAYLOAD_TOO_LARGE');
  assert.equal(mock.requests.filter((r) => r.url.endsWith(`/${s.id}`)).length, 0);
});

test('1,000 messages: one VAPID JWT for the push service, a handful of connections', T, async () => {
  const jwtsBefore = new Set(mock.jwts);
  const connectionsBefore = mock.connections;
  const subs = subscriptions(100);
  const subscriberId = await createSubscriberWithTokens(h, integ, subs.map((s) => s.token));
  const txs = [];
  for (let i = 0; i < 10; i++) txs.push(await trigger(h, wf, subscriberId, { orderId: i }));
  const messages = await settledMany(h, txs, 100);
  assert.equal(messages.filter((m) => m.status === 'sent').length, 1000);
  const newJwts = [...mock.jwts].filter((j) => !jwtsBefore.has(j));
  assert.ok(newJwts.length <= 1, `at most one new VAPID JWT (the one cached earlier may serve): ${newJwts.length}`);
  assert.equal(new Set(mock.received.slice(-1000).map((r) => r.vapid.token)).size, 1, 'one JWT for all 1,000');
  const opened = mock.connections - connectionsBefore;
  assert.ok(opened <= 4, `connections opened for 1,000 messages: ${opened}`);
});

test('GET /v1/integrations/{id}/vapid-public-key serves the public key only', T, async () => {
  const res = await raw(h, 'GET', `/v1/integrations/${integ._id}/vapid-public-key`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.data.publicKey, vapid.publicKey);
  assert.ok(!res.text.includes(vapid.privateKey));
  const other = await createIntegration(h, 'push-webhook', { webhookUrl: 'http://127.0.0.1:9/x', secretKey: 'k' });
  const wrong = await raw(h, 'GET', `/v1/integrations/${other._id}/vapid-public-key`);
  assert.equal(wrong.status, 400);
  const missing = await raw(h, 'GET', '/v1/integrations/000000000000000000000000/vapid-public-key');
  assert.equal(missing.status, 404);
});

test('Test Connection checks the key pair; Send Test pushes now and reports the verdict', T, async () => {
  assert.deepEqual(await testConnection(h, integ), { ok: true, detail: 'credentials checked locally' });
  const [s] = subscriptions(1);
  const result = await sendTest(h, integ, s.token, { title: 'Ping', body: 'Pong' });
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.verdict, 'delivered');
  assert.ok(result.providerResponseId.includes('/message/'));
  const shown = JSON.parse(receivedFor(s.id)[0].plaintext);
  assert.equal(shown.title, 'Ping');
  assert.equal(shown.body, 'Pong');

  mock.unsubscribe(s.id);
  const gone = await sendTest(h, integ, JSON.parse(s.token));  // the subscription object itself
  assert.equal(gone.ok, false);
  assert.equal(gone.verdict, 'failed-remove-token');
  assert.equal(gone.reason, 'SUBSCRIPTION_GONE');

  const bad = await raw(h, 'POST', `/v1/integrations/${integ._id}/send-test`, { body: { token: 'not json' } });
  assert.equal(bad.status, 400, bad.text);
  const noToken = await raw(h, 'POST', `/v1/integrations/${integ._id}/send-test`, { body: { title: 'x' } });
  assert.equal(noToken.status, 400, noToken.text);
});

test('bad VAPID credentials are refused at create, naming the field', T, async () => {
  for (const [credentials, field] of [
    [{ apiKey: 'nope', secretKey: vapid.privateKey, from: 'mailto:a@b.c' }, 'credentials.apiKey'],
    [{ apiKey: vapid.publicKey, secretKey: makeVapidKeys().privateKey, from: 'mailto:a@b.c' }, 'credentials.secretKey'],
    [{ apiKey: vapid.publicKey, secretKey: vapid.privateKey, from: 'ops' }, 'credentials.from'],
  ]) {
    const res = await raw(h, 'POST', '/v1/integrations', { body: { providerId: 'web-push', channel: 'push', credentials } });
    assert.equal(res.status, 400, res.text);
    assert.ok(res.json.message.includes(field), `${field}: ${res.text}`);
  }
});
