// Pusher Beams through Herald to a loopback Beams publish API
// (src/providers/pusher_beams/pusher_beams_mock.mjs: instance, key, content type, size and schema
// checks): the publish a user gets, identical messages in few publishes, retries on 429/5xx, a
// refused key and an unknown instance as configuration errors, oversize overrides refused,
// Test Connection and Send Test.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPusherBeamsMock } from '../../src/providers/pusher_beams/pusher_beams_mock.mjs';
import {
  createIntegration, createSubscriberWithTokens, expectRefusedCredentials, listedTokens, putTokens,
  sendTest, sendToNewTopic, settled, startProviderSuite, stopProviderSuite, testConnection, trigger, uid,
} from './provider_fixtures.mjs';

const T = { timeout: 60_000 };
let h;
let sdk;
let mock;
let integ;
let wf;

const user = () => uid('beams-user');
const publishes = () => mock.requests.filter((r) => r.kind === 'users');

before(async () => {
  ({ h, sdk, mock, wf } = await startProviderSuite((pki) => startPusherBeamsMock({ tls: pki.server })));
  integ = await createIntegration(h, 'pusher-beams', { instanceId: mock.instanceId, secretKey: mock.secretKey, baseUrl: mock.origin });
}, { timeout: 30_000 });

after(() => stopProviderSuite(h, mock));

test('the publish: users, apns / fcm / web blocks from the step and overrides', T, async () => {
  const users = [user(), user()];
  const subscriberId = await createSubscriberWithTokens(h, integ, users);
  const before = publishes().length;
  const tx = await trigger(h, wf, subscriberId, { orderId: 7 }, {
    'pusher-beams': {
      sound: 'ping', badge: 2, categoryId: 'ORDER', channelId: 'orders', clickAction: 'OPEN_ORDER',
      color: '#00ff00', icon: 'https://example.com/i.png', tag: 'order-7', ttl: 3600,
      web: { notification: { deep_link: 'https://example.com/o/7' } },
    },
  });
  const messages = await settled(h, tx, 2);
  assert.deepEqual(messages.map((m) => m.status), ['sent', 'sent'], JSON.stringify(messages));
  const sent = publishes().slice(before);
  assert.equal(sent.length, 1, 'one publish for both users');
  const { json, headers } = sent[0];
  assert.equal(headers.authorization, `Bearer ${mock.secretKey}`);
  assert.deepEqual([...json.users].sort(), [...users].sort());
  assert.deepEqual(json.apns, {
    aps: { alert: { title: 'Hi Ann', body: 'Order 7' }, badge: 2, category: 'ORDER', sound: 'ping' },
    data: { orderId: 7 },
  });
  assert.deepEqual(json.fcm, {
    notification: {
      title: 'Hi Ann', body: 'Order 7', android_channel_id: 'orders', click_action: 'OPEN_ORDER',
      color: '#00ff00', icon: 'https://example.com/i.png', sound: 'ping', tag: 'order-7',
    },
    data: { orderId: 7 },
    time_to_live: 3600,
  });
  assert.deepEqual(json.web, {
    notification: { title: 'Hi Ann', body: 'Order 7', icon: 'https://example.com/i.png', deep_link: 'https://example.com/o/7' },
    data: { orderId: 7 },
    time_to_live: 3600,
  });
  const publishId = sent[0].publishId;
  for (const m of messages) assert.equal(m.providerResponseId, publishId);
});

test('a topic of 60 subscribers goes out in a few publishes; different messages do not share one', T, async () => {
  const users = Array.from({ length: 60 }, user);
  const before = publishes().length;
  await sendToNewTopic(h, sdk, wf, integ, users, { firstName: (i) => (i % 2 ? 'Ann' : 'Bob') });
  const sent = publishes().slice(before);
  assert.deepEqual(sent.flatMap((r) => r.json.users).sort(), [...users].sort(), 'each user once');
  for (const r of sent) {
    const titles = new Set(r.json.users.map((u) => (users.indexOf(u) % 2 ? 'Hi Ann' : 'Hi Bob')));
    assert.deepEqual([...titles], [r.json.apns.aps.alert.title], 'a publish carries one message');
  }
  assert.ok(sent.length <= 8, `60 messages (two texts) in ${sent.length} publishes`);
});

test('429 and 5xx are retried (Retry-After honoured); every user gets it once', T, async () => {
  const users = [user(), user()];
  const subscriberId = await createSubscriberWithTokens(h, integ, users);
  mock.failNext(429, { retryAfter: 1 });
  mock.failNext(500);
  const started = Date.now();
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 2 }), 2);
  // The two may be retried together or apart (each retry is scheduled on its own).
  assert.ok(messages.every((m) => m.status === 'sent' && m.attempts >= 2), JSON.stringify(messages));
  assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was waited for');
  for (const u of users) assert.equal(mock.forUser(u).length, 1);
});

test('a wrong key and an unknown instance fail as configuration; tokens are kept', T, async () => {
  const wrongKey = await createIntegration(h, 'pusher-beams', { instanceId: mock.instanceId, secretKey: 'WRONG', baseUrl: mock.origin });
  const wrongInstance = await createIntegration(h, 'pusher-beams', { instanceId: 'no-such-instance', secretKey: mock.secretKey, baseUrl: mock.origin });
  for (const [integration, errorId] of [[wrongKey, 'HTTP_401'], [wrongInstance, 'HTTP_404']]) {
    await expectRefusedCredentials(h, wf, integration, { token: user(), testToken: user(), errorId });
  }
  assert.ok(!JSON.stringify(mock.requests.map((r) => r.response)).includes(mock.secretKey));
});

test('overrides Beams would refuse fail the message with a typed reason', T, async () => {
  const u = user();
  const subscriberId = await createSubscriberWithTokens(h, integ, [u]);
  const before = publishes().length;
  for (const [overrides, errorId] of [
    [{ ttl: 'soon' }, 'INVALID_OVERRIDES'],
    [{ data: { pusher: 'mine' } }, 'RESERVED_DATA_KEY'],
    [{ data: { blob: 'x'.repeat(70 * 1024) } }, 'MESSAGE_TOO_LARGE'],
  ]) {
    const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 4 }, { 'pusher-beams': overrides }), 1);
    assert.deepEqual([m.status, m.errorId], ['error', errorId], JSON.stringify(m));
  }
  assert.equal(publishes().length, before, 'nothing was sent');
  assert.deepEqual(await listedTokens(h, subscriberId, 'pusher-beams'), [u]);
});

test('Test Connection publishes to nobody; Send Test reaches one user; user ids are checked', T, async () => {
  const before = mock.delivered.length;
  const result = await testConnection(h, integ);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.deepEqual(mock.requests.at(-1).json.users, []);
  assert.equal(mock.requests.at(-1).status, 422);
  assert.equal(mock.delivered.length, before);

  const u = user();
  const sent = await sendTest(h, integ, u, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.verdict, 'delivered', JSON.stringify(sent));
  assert.deepEqual(mock.forUser(u)[0].body.web.notification, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.providerResponseId, mock.forUser(u)[0].publishId);

  const subscriberId = await createSubscriberWithTokens(h, integ, []);
  for (const bad of ['u'.repeat(165), 'two words']) {
    const res = await putTokens(h, subscriberId, integ, [bad]);
    assert.equal(res.status, 400, res.text);
  }
  await createSubscriberWithTokens(h, integ, ['é'.repeat(82)]);  // 164 bytes
});
