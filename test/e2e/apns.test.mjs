// APNs through Herald to a loopback APNs (src/providers/apns/apns_mock.mjs: HTTP/2 over TLS with
// a test CA, ES256 provider tokens verified, Apple's reason bodies per device token, GOAWAY):
// token and certificate auth, what a device receives, dead tokens, retries, one provider JWT and
// a few connections for 1,000 messages, GOAWAY, Test Connection, Send Test, bad credentials.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startApnsMock } from '../../src/providers/apns/apns_mock.mjs';
import {
  createIntegration, createSubscriberWithTokens, createWorkflow, deviceRecords, listedTokens,
  makeP8, raw, sendTest, settled, settledMany, startHeraldForMocks, testConnection, trigger,
} from './provider_fixtures.mjs';
import { sharedTlsAuthority } from './tls_authority.mjs';

const T = { timeout: 60_000 };
const BUNDLE = 'com.example.herald';
let h;
let sdk;
let pki;
let mock;
let key;
let integ;
let wf;

const device = () => randomBytes(32).toString('hex');

function tokenCredentials(p8, keyId, teamId = 'TEAM123456') {
  return { secretKey: p8.privatePem, apiKey: keyId, projectName: teamId, applicationId: BUNDLE, baseUrl: mock.origin };
}

before(async () => {
  ({ h, sdk, pki } = await startHeraldForMocks());
  mock = await startApnsMock({ tls: pki.server, requestClientCert: true, clientCa: pki.clientCa.cert });
  key = makeP8();
  mock.addKey({ keyId: 'KEY1234567', teamId: 'TEAM123456', publicKeyPem: key.publicPem });
  integ = await createIntegration(h, 'apns', tokenCredentials(key, 'KEY1234567'));
  wf = await createWorkflow(sdk);
}, { timeout: 30_000 });

after(async () => {
  if (h) await h.stop();
  if (mock) await mock.close();
});

const receivedFor = (token) => mock.received.filter((r) => r.token === token);

test('token auth: aps from the step and overrides, custom keys, headers, apns-id kept', T, async () => {
  const [d1, d2] = [device(), device()];
  const subscriberId = await createSubscriberWithTokens(h, integ, [d1, d2]);
  const tx = await trigger(h, wf, subscriberId, { orderId: 7 }, {
    apns: { badge: 3, sound: 'default', threadId: 'orders', collapseId: 'order-7', payload: { screen: 'order' } },
  });
  const messages = await settled(h, tx, 2);
  for (const m of messages) assert.equal(m.status, 'sent', JSON.stringify(m));
  for (const d of [d1, d2]) {
    const [got] = receivedFor(d);
    assert.ok(got, `device ${d} received`);
    assert.equal(got.headers['apns-topic'], BUNDLE);
    assert.equal(got.headers['apns-push-type'], 'alert');
    assert.equal(got.headers['apns-collapse-id'], 'order-7');
    assert.match(got.headers.authorization, /^bearer /);
    assert.deepEqual(got.jwt && { kid: got.jwt.kid, iss: got.jwt.iss }, { kid: 'KEY1234567', iss: 'TEAM123456' });
    assert.deepEqual(got.payload.aps, { alert: { title: 'Hi Ann', body: 'Order 7' }, badge: 3, sound: 'default', 'thread-id': 'orders' });
    assert.equal(got.payload.orderId, 7);
    assert.equal(got.payload.screen, 'order');
    assert.equal(got.payload.subscriber, undefined, 'Novu\'s subscriber document stays out of the 4 KB payload');
    const message = messages.find((m) => m._id === got.payload.messageId);
    assert.ok(message, 'messageId names the message');
    assert.equal(message.providerResponseId, got.apnsId, 'apns-id kept as the provider response id');
  }
});

test('dead tokens: Unregistered is unsubscribed, BadDeviceToken expired; both leave the channel', T, async () => {
  const [gone, bad, ok, renewed] = [device(), device(), device(), device()];
  // Apple's timestamp says since when the token is invalid: one registered again after that
  // moment is kept (its message still fails).
  mock.setToken(renewed, { reason: 'Unregistered', timestamp: Date.now() - 60_000 });
  const subscriberId = await createSubscriberWithTokens(h, integ, [gone, bad, ok, renewed]);
  mock.setToken(gone, { reason: 'Unregistered', timestamp: Date.now() + 1 });
  mock.setToken(bad, 'BadDeviceToken');
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 1 }), 4);
  assert.deepEqual(messages.map((m) => m.errorId ?? 'sent').sort(), ['BadDeviceToken', 'Unregistered', 'Unregistered', 'sent']);
  assert.deepEqual(await listedTokens(h, subscriberId, 'apns'), [ok, renewed]);
  const records = await deviceRecords(h, subscriberId);
  assert.equal(records.find((d) => d.token === gone).status, 'unsubscribed');
  assert.equal(records.find((d) => d.token === bad).status, 'expired');
  assert.equal(records.find((d) => d.token === bad).lastFailureReason, 'BadDeviceToken');
  const kept = records.find((d) => d.token === renewed);
  assert.equal(kept.status, 'active');
  assert.equal(kept.lastFailureReason, 'Unregistered');
});

test('TooManyRequests and 503 are retried with backoff; ExpiredProviderToken is resent at once', T, async () => {
  const [busy, down, stale] = [device(), device(), device()];
  mock.setToken(busy, [{ reason: 'TooManyRequests' }]);
  mock.setToken(down, [{ reason: 'ServiceUnavailable' }, { reason: 'InternalServerError' }]);
  mock.setToken(stale, [{ reason: 'ExpiredProviderToken' }]);
  const subscriberId = await createSubscriberWithTokens(h, integ, [busy, down, stale]);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 2 }), 3);
  for (const m of messages) assert.equal(m.status, 'sent', JSON.stringify(messages));
  assert.equal(receivedFor(busy).length, 1);
  assert.equal(receivedFor(down).length, 1);
  assert.equal(receivedFor(stale).length, 1);
  // The stale-token reply was answered by a resend within the same attempt.
  const staleMessage = messages.find((m) => JSON.stringify(m).includes(stale));
  assert.equal(staleMessage.attempts, 1, JSON.stringify(staleMessage));
});

// A fresh APNs for this test (see fcm.test.mjs: the mock ends a session after about a thousand
// RST_STREAM frames, and libcurl 7.88 sends one after every completed stream).
test('1,000 messages: one provider JWT and a handful of HTTP/2 connections', T, async () => {
  const fresh = await startApnsMock({ tls: pki.server });
  try {
    fresh.addKey({ keyId: 'KEY1234567', teamId: 'TEAM123456', publicKeyPem: key.publicPem });
    const integration = await createIntegration(h, 'apns', { ...tokenCredentials(key, 'KEY1234567'), baseUrl: fresh.origin });
    const tokens = Array.from({ length: 100 }, device);
    const subscriberId = await createSubscriberWithTokens(h, integration, tokens);
    const txs = [];
    for (let i = 0; i < 10; i++) txs.push(await trigger(h, wf, subscriberId, { orderId: i }));
    const messages = await settledMany(h, txs, 100);
    assert.equal(messages.filter((m) => m.status === 'sent').length, 1000);
    assert.equal(fresh.jwts.length, 1, 'one provider token, minted once for the key and team');
    assert.ok(fresh.connections <= 2, `HTTP/2 connections for 1,000 messages: ${fresh.connections}`);
  } finally {
    await fresh.close();
  }
});

test('GOAWAY: the streams it refused go out again on a new connection', T, async () => {
  const tokens = Array.from({ length: 40 }, device);
  const subscriberId = await createSubscriberWithTokens(h, integ, tokens);
  mock.goawayAfter(10);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 3 }), 40);
  mock.goawayAfter(null);
  assert.equal(messages.filter((m) => m.status === 'sent').length, 40, JSON.stringify(messages.filter((m) => m.status !== 'sent')));
  for (const t of tokens) assert.equal(receivedFor(t).length, 1, `each device once: ${t}`);
});

test('an http:// baseUrl speaks HTTP/2 with prior knowledge (h2c), for loopback mocks', T, async () => {
  const plain = await startApnsMock();  // h2c
  try {
    plain.addKey({ keyId: 'KEY1234567', teamId: 'TEAM123456', publicKeyPem: key.publicPem });
    assert.match(plain.origin, /^http:/);
    const integration = await createIntegration(h, 'apns', { ...tokenCredentials(key, 'KEY1234567'), baseUrl: plain.origin });
    const tokens = [device(), device()];
    const subscriberId = await createSubscriberWithTokens(h, integration, tokens);
    const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 5 }), 2);
    for (const m of messages) assert.equal(m.status, 'sent', JSON.stringify(m));
    assert.deepEqual(plain.received.map((r) => r.token).sort(), [...tokens].sort());
  } finally {
    await plain.close();
  }
});

test('certificate auth: a .p12 with its password, a PEM certificate and key', T, async () => {
  const client = await pki.issueClient({ cn: 'Apple Push Services: com.example.herald', uid: BUNDLE, password: 'p12-secret' });
  const p12 = await createIntegration(h, 'apns', {
    certificate: client.p12.toString('base64'), password: 'p12-secret', applicationId: BUNDLE, baseUrl: mock.origin,
  });
  const pem = await createIntegration(h, 'apns', {
    certificate: client.cert, privateKey: client.key, applicationId: BUNDLE, baseUrl: mock.origin,
  });
  for (const integration of [p12, pem]) {
    const d = device();
    const subscriberId = await createSubscriberWithTokens(h, integration, [d]);
    const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 4 }), 1);
    assert.equal(m.status, 'sent', JSON.stringify(m));
    const [got] = receivedFor(d);
    assert.equal(got.jwt, null, 'no provider token with a certificate');
    assert.equal(got.headers.authorization, undefined);
    assert.equal(got.clientSubject?.UID, BUNDLE);
  }
  assert.ok(!JSON.stringify(p12.credentials).includes('p12-secret'), 'the password is masked');

  const wrong = await raw(h, 'POST', '/v1/integrations', {
    body: { providerId: 'apns', channel: 'push', credentials: { certificate: client.p12.toString('base64'), password: 'wrong', applicationId: BUNDLE } },
  });
  assert.equal(wrong.status, 400, wrong.text);
  assert.ok(wrong.json.message.startsWith('credentials.password'), wrong.text);
});

test('Test Connection: accepted key; a revoked key reports InvalidProviderToken. Send Test.', T, async () => {
  assert.equal((await testConnection(h, integ)).ok, true);
  const d = device();
  const sent = await sendTest(h, integ, d, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.verdict, 'delivered', JSON.stringify(sent));
  assert.deepEqual(receivedFor(d)[0].payload.aps.alert, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.providerResponseId, receivedFor(d)[0].apnsId);

  const revokedKey = makeP8();
  mock.addKey({ keyId: 'KEYREVOKED', teamId: 'TEAM123456', publicKeyPem: revokedKey.publicPem });
  mock.revokeKey('KEYREVOKED');
  const revoked = await createIntegration(h, 'apns', tokenCredentials(revokedKey, 'KEYREVOKED'));
  const result = await testConnection(h, revoked);
  assert.equal(result.ok, false);
  assert.equal(result.reason, 'InvalidProviderToken');
  const failed = await sendTest(h, revoked, device());
  assert.equal(failed.verdict, 'failed-config');
});

test('bad credentials are refused at create, naming the field', T, async () => {
  const cases = [
    [{ secretKey: 'not a pem', apiKey: 'KEY1234567', projectName: 'TEAM123456', applicationId: BUNDLE }, 'credentials.secretKey'],
    [{ secretKey: makeP8().privatePem, apiKey: 'short', projectName: 'TEAM123456', applicationId: BUNDLE }, 'credentials.apiKey'],
    [{ certificate: 'bm90IGEgcDEy', password: 'x', applicationId: BUNDLE }, 'credentials.password'],
    [{ applicationId: BUNDLE }, 'credentials.secretKey'],
  ];
  for (const [credentials, field] of cases) {
    const res = await raw(h, 'POST', '/v1/integrations', { body: { providerId: 'apns', channel: 'push', credentials } });
    assert.equal(res.status, 400, res.text);
    assert.ok(res.json.message.startsWith(field), `${field}: ${res.text}`);
  }
});
