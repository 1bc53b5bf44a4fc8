// FCM HTTP v1 through Herald to a loopback FCM (src/providers/fcm/fcm_mock.mjs: Google's token
// endpoint verifying the RS256 assertion and issuing expiring tokens, messages:send with Google's
// validation and error shapes): the message a device receives, dead tokens, retries, the OAuth
// token refreshed once when it expires mid-run, one exchange and a few connections for 1,000
// messages, Test Connection, Send Test, bad credentials.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFcmMock } from '../../src/providers/fcm/fcm_mock.mjs';
import {
  createIntegration, createSubscriberWithTokens, createWorkflow, deviceRecords, listedTokens,
  raw, sendTest, settled, settledMany, startHeraldForMocks, testConnection, trigger, uid,
} from './provider_fixtures.mjs';

const T = { timeout: 60_000 };
let h;
let sdk;
let mock;
let account;
let integ;
let wf;

const device = () => uid('fcm-token');

before(async () => {
  let pki;
  ({ h, sdk, pki } = await startHeraldForMocks());
  mock = await startFcmMock({ tls: pki.server });
  account = mock.makeServiceAccount({ projectId: 'herald-demo' });
  integ = await createIntegration(h, 'fcm', { serviceAccount: account.json, baseUrl: mock.origin });
  wf = await createWorkflow(sdk);
}, { timeout: 30_000 });

after(async () => {
  if (h) await h.stop();
  if (mock) await mock.close();
});

const receivedFor = (token) => mock.delivered.filter((r) => r.token === token);

test('the message: notification from the step, data as strings, platform blocks from overrides', T, async () => {
  const exchangesBefore = mock.exchanges;
  const d = device();
  const subscriberId = await createSubscriberWithTokens(h, integ, [d]);
  const tx = await trigger(h, wf, subscriberId, { orderId: 7 }, {
    fcm: {
      data: { orderId: 7, kind: 'order', nested: { a: 1 } },
      android: { priority: 'high', ttl: '3600s', notification: { channel_id: 'orders' } },
      apns: { payload: { aps: { badge: 1 } } },
      webPush: { headers: { Urgency: 'high' } },
      fcmOptions: { analytics_label: 'orders' },
    },
  });
  const [m] = await settled(h, tx, 1);
  assert.equal(m.status, 'sent', JSON.stringify(m));
  const [got] = receivedFor(d);
  assert.deepEqual(got.message.notification, { title: 'Hi Ann', body: 'Order 7' });
  assert.deepEqual(got.message.data, { orderId: '7', kind: 'order', nested: '{"a":1}' });
  assert.equal(got.message.android.priority, 'high');
  assert.equal(got.message.android.notification.channel_id, 'orders');
  assert.deepEqual(got.message.apns.payload.aps, { badge: 1 });
  assert.equal(got.message.webpush.headers.Urgency, 'high');
  assert.equal(got.message.fcm_options.analytics_label, 'orders');
  assert.equal(got.clientEmail, JSON.parse(account.json).client_email);
  assert.equal(m.providerResponseId, got.name, 'FCM\'s message name kept');
  assert.ok(mock.exchanges - exchangesBefore <= 1, 'at most one token exchange');
});

test('Novu\'s data-only form: overrides.type = "data"', T, async () => {
  const d = device();
  const subscriberId = await createSubscriberWithTokens(h, integ, [d]);
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 8, flag: true }, { fcm: { type: 'data' } }), 1);
  assert.equal(m.status, 'sent', JSON.stringify(m));
  const [got] = receivedFor(d);
  assert.equal(got.message.notification, undefined);
  assert.deepEqual(got.message.data, { orderId: '8', flag: 'true', title: 'Hi Ann', body: 'Order 8', message: 'Order 8' });
});

test('dead tokens: UNREGISTERED unsubscribed, an invalid token expired; both leave the channel', T, async () => {
  const [gone, invalid, ok] = [device(), device(), device()];
  mock.setToken(gone, 'UNREGISTERED');
  mock.setToken(invalid, 'INVALID');
  const subscriberId = await createSubscriberWithTokens(h, integ, [gone, invalid, ok]);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 1 }), 3);
  assert.deepEqual(messages.map((m) => m.errorId ?? 'sent').sort(), ['INVALID_ARGUMENT', 'UNREGISTERED', 'sent']);
  assert.deepEqual(await listedTokens(h, subscriberId, 'fcm'), [ok]);
  const records = await deviceRecords(h, subscriberId);
  assert.equal(records.find((r) => r.token === gone).status, 'unsubscribed');
  assert.equal(records.find((r) => r.token === invalid).status, 'expired');
});

test('UNAVAILABLE and QUOTA_EXCEEDED are retried, honouring Retry-After; SENDER_ID_MISMATCH fails as config', T, async () => {
  const [down, quota, mismatch] = [device(), device(), device()];
  mock.setToken(down, [{ state: 'UNAVAILABLE', retryAfter: '1' }]);
  mock.setToken(quota, [{ state: 'QUOTA_EXCEEDED', retryAfter: '1' }]);
  mock.setToken(mismatch, 'SENDER_ID_MISMATCH');
  const subscriberId = await createSubscriberWithTokens(h, integ, [down, quota, mismatch]);
  const started = Date.now();
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 2 }), 3);
  assert.deepEqual(messages.map((m) => `${m.status}/${m.attempts}/${m.errorId ?? ''}`).sort(),
    ['error/1/SENDER_ID_MISMATCH', 'sent/2/', 'sent/2/']);
  assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was waited for');
  assert.deepEqual(await listedTokens(h, subscriberId, 'fcm'), [down, quota, mismatch], 'a config error keeps the token');
});

test('an access token that expires mid-run: exactly one new exchange, every message delivered', T, async () => {
  const tokens = Array.from({ length: 50 }, device);
  const subscriberId = await createSubscriberWithTokens(h, integ, tokens);
  await settled(h, await trigger(h, wf, subscriberId, { orderId: 3 }), 50);
  const exchangesBefore = mock.exchanges;
  mock.expireAccessTokens();
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 4 }), 50);
  assert.equal(messages.filter((m) => m.status === 'sent').length, 50, JSON.stringify(messages.filter((m) => m.status !== 'sent')));
  for (const m of messages) assert.equal(m.attempts, 1, 'resent within the same attempt');
  assert.equal(mock.exchanges - exchangesBefore, 1, 'one exchange for all the refused sends');
});

// A fresh push service for this test: the mock (Node, nghttp2) ends a session with GOAWAY after
// about a thousand RST_STREAM frames, and libcurl 7.88 follows every completed stream with one
// (README, "Known limits").
test('1,000 messages: one exchange and a handful of HTTP/2 connections', T, async () => {
  const pki = await (await import('./tls_authority.mjs')).sharedTlsAuthority();
  const fresh = await startFcmMock({ tls: pki.server });
  try {
    const sa = fresh.makeServiceAccount({ projectId: 'herald-demo', privateKeyPem: account.privateKeyPem });
    const integration = await createIntegration(h, 'fcm', { serviceAccount: sa.json, baseUrl: fresh.origin });
    const tokens = Array.from({ length: 100 }, device);
    const subscriberId = await createSubscriberWithTokens(h, integration, tokens);
    const txs = [];
    for (let i = 0; i < 10; i++) txs.push(await trigger(h, wf, subscriberId, { orderId: i }));
    const messages = await settledMany(h, txs, 100);
    assert.equal(messages.filter((m) => m.status === 'sent').length, 1000);
    assert.equal(fresh.exchanges, 1, 'one token exchange for the credential');
    assert.ok(fresh.connections <= 3, `connections for 1,000 messages and the exchange: ${fresh.connections}`);
    const versions = [...new Set(fresh.delivered.map((r) => r.httpVersion))];
    assert.deepEqual(versions, ['2.0'], 'HTTP/2');
  } finally {
    await fresh.close();
  }
});

test('Test Connection: exchange and dry run; a revoked account reports invalid_grant. Send Test.', T, async () => {
  const result = await testConnection(h, integ);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(mock.received.at(-1).validateOnly, true, 'a validate_only request');

  const d = device();
  const sent = await sendTest(h, integ, d, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.verdict, 'delivered', JSON.stringify(sent));
  assert.deepEqual(receivedFor(d)[0].message.notification, { title: 'Ping', body: 'Pong' });

  const other = mock.makeServiceAccount({ projectId: 'herald-demo', privateKeyPem: account.privateKeyPem, clientEmail: 'revoked@herald-demo.iam.gserviceaccount.com' });
  const revoked = await createIntegration(h, 'fcm', { serviceAccount: other.json, baseUrl: mock.origin });
  mock.revokeAccount(other.clientEmail);
  const refused = await testConnection(h, revoked);
  assert.equal(refused.ok, false);
  assert.equal(refused.reason, 'invalid_grant');
  const failed = await sendTest(h, revoked, device());
  assert.equal(failed.verdict, 'failed-config');
  assert.equal(failed.reason, 'invalid_grant');
});

test('bad service accounts are refused at create, naming the field', T, async () => {
  const good = JSON.parse(account.json);
  for (const serviceAccount of [
    'not json',
    JSON.stringify({ ...good, private_key: 'not a key' }),
    JSON.stringify({ ...good, private_key: (await import('./provider_fixtures.mjs')).makeP8().privatePem }),
    JSON.stringify({ ...good, token_uri: undefined }),
  ]) {
    const res = await raw(h, 'POST', '/v1/integrations', { body: { providerId: 'fcm', channel: 'push', credentials: { serviceAccount } } });
    assert.equal(res.status, 400, res.text);
    assert.ok(res.json.message.startsWith('credentials.serviceAccount'), res.text);
  }
});
