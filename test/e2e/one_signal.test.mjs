// OneSignal through Herald to a loopback OneSignal (src/providers/one_signal/one_signal_mock.mjs:
// app id and key checks, one targeting mode, idempotent replays, invalid ids in the reply): what
// a notification carries in both targeting models, identical messages in few requests, invalid
// and unsubscribed ids removed, retries with the same idempotency key, a refused key, Test
// Connection and Send Test.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOneSignalMock } from '../../src/providers/one_signal/one_signal_mock.mjs';
import {
  createIntegration, createSubscriberWithTokens, deviceRecords, expectRefusedCredentials, listedTokens,
  putTokens, sendTest, sendToNewTopic, settled, startProviderSuite, stopProviderSuite, testConnection,
  trigger, uid,
} from './provider_fixtures.mjs';

const T = { timeout: 60_000 };
let h;
let sdk;
let mock;
let players; // apiVersion playerModel (the default)
let aliases; // apiVersion externalId
let wf;

const device = () => uid('os-player');
const creates = () => mock.requests.filter((r) => r.kind === 'create');

before(async () => {
  ({ h, sdk, mock, wf } = await startProviderSuite((pki) => startOneSignalMock({ tls: pki.server })));
  players = await createIntegration(h, 'one-signal', { applicationId: mock.appId, apiKey: mock.apiKey, baseUrl: mock.origin });
  aliases = await createIntegration(h, 'one-signal', {
    applicationId: mock.appId, apiKey: mock.apiKey, apiVersion: 'externalId', baseUrl: mock.origin,
  });
}, { timeout: 30_000 });

after(() => stopProviderSuite(h, mock));

test('player model: one request for a subscriber\'s devices, Basic auth, Novu\'s fields', T, async () => {
  const tokens = [device(), device(), device()];
  const subscriberId = await createSubscriberWithTokens(h, players, tokens);
  const before = creates().length;
  const tx = await trigger(h, wf, subscriberId, { orderId: 7 }, {
    'one-signal': { sound: 'ping.wav', subtitle: 'Shipping', badge: 2, data: { kind: 'order' }, url: 'https://example.com/o/7' },
  });
  const messages = await settled(h, tx, 3);
  assert.deepEqual(messages.map((m) => m.status), ['sent', 'sent', 'sent'], JSON.stringify(messages));
  const sent = creates().slice(before);
  assert.equal(sent.length, 1, 'one request for the three devices');
  const [req] = sent;
  assert.equal(req.path, '/api/v1/notifications');
  assert.equal(req.scheme, 'Basic');
  assert.deepEqual([...req.json.include_player_ids].sort(), [...tokens].sort());
  assert.equal(req.json.app_id, mock.appId);
  assert.deepEqual(req.json.headings, { en: 'Hi Ann' });
  assert.deepEqual(req.json.contents, { en: 'Order 7' });
  assert.deepEqual(req.json.subtitle, { en: 'Shipping' });
  assert.deepEqual(req.json.data, { orderId: 7, kind: 'order' });
  assert.equal(req.json.ios_sound, 'ping.wav');
  assert.equal(req.json.ios_badgeType, 'SetTo');
  assert.equal(req.json.ios_badgeCount, 2);
  assert.equal(req.json.url, 'https://example.com/o/7');
  assert.match(req.json.idempotency_key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const id = mock.forToken(tokens[0])[0].notificationId;
  for (const m of messages) assert.equal(m.providerResponseId, id, 'the notification id is kept');
});

test('external ids: Key auth, include_aliases with target_channel push', T, async () => {
  const user = uid('user');
  const subscriberId = await createSubscriberWithTokens(h, aliases, [user]);
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 8 }), 1);
  assert.equal(m.status, 'sent', JSON.stringify(m));
  const req = creates().at(-1);
  assert.equal(req.path, '/notifications');
  assert.equal(req.scheme, 'Key');
  assert.deepEqual(req.json.include_aliases, { external_id: [user] });
  assert.equal(req.json.target_channel, 'push');
  assert.equal(req.json.include_player_ids, undefined);
  assert.equal(mock.forToken(user)[0].mode, 'include_aliases');
});

test('a topic of 60 subscribers goes out in a few requests', T, async () => {
  const tokens = Array.from({ length: 60 }, device);
  const before = creates().length;
  await sendToNewTopic(h, sdk, wf, players, tokens);
  const requests = creates().slice(before);
  const targeted = requests.flatMap((r) => r.json.include_player_ids);
  assert.deepEqual([...targeted].sort(), [...tokens].sort(), 'each device once');
  assert.ok(requests.length <= 6, `60 identical messages in ${requests.length} requests`);
});

test('invalid ids are removed and the others delivered; nobody subscribed removes them all', T, async () => {
  const [ok1, bad, ok2] = [device(), device(), device()];
  mock.markInvalid(bad);
  const subscriberId = await createSubscriberWithTokens(h, players, [ok1, bad, ok2]);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 10 }), 3);
  assert.deepEqual(messages.map((m) => m.errorId ?? 'sent').sort(), ['INVALID_PLAYER_ID', 'sent', 'sent']);
  assert.deepEqual((await listedTokens(h, subscriberId, 'one-signal')).sort(), [ok1, ok2].sort());
  assert.equal((await deviceRecords(h, subscriberId)).find((r) => r.token === bad).status, 'expired');
  assert.equal(mock.forToken(bad).length, 0);

  const [gone1, gone2] = [device(), device()];
  mock.markUnsubscribed(gone1, gone2);
  const other = await createSubscriberWithTokens(h, players, [gone1, gone2]);
  const failed = await settled(h, await trigger(h, wf, other, { orderId: 11 }), 2);
  assert.deepEqual(failed.map((m) => m.errorId), ['NOT_SUBSCRIBED', 'NOT_SUBSCRIBED']);
  assert.deepEqual(await listedTokens(h, other, 'one-signal'), []);
  const records = await deviceRecords(h, other);
  assert.ok(records.every((r) => r.status === 'unsubscribed'), JSON.stringify(records));
});

test('a reply lost after OneSignal sent it: the retry carries the same key and is not sent twice', T, async () => {
  const d = device();
  const subscriberId = await createSubscriberWithTokens(h, players, [d]);
  const before = creates().length;
  mock.failNext(503, { afterDelivery: true });
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 12 }), 1);
  assert.equal(m.status, 'sent', JSON.stringify(m));
  assert.equal(m.attempts, 2);
  const [first, second] = creates().slice(before);
  assert.equal(first.status, 503);
  assert.equal(second.replayed, true);
  assert.equal(second.idempotencyKey, first.idempotencyKey);
  assert.equal(mock.forToken(d).length, 1, 'one delivery');

  // The same for a request of several messages without Retry-After: they are retried together,
  // batched the same way again, so the key is the same and every device gets it once.
  const many = [device(), device(), device(), device()];
  const group = await createSubscriberWithTokens(h, players, many);
  const beforeGroup = creates().length;
  mock.failNext(503, { afterDelivery: true });
  const sentGroup = await settled(h, await trigger(h, wf, group, { orderId: 14 }), 4);
  assert.deepEqual(sentGroup.map((x) => `${x.status}/${x.attempts}`), ['sent/2', 'sent/2', 'sent/2', 'sent/2']);
  const [lost, replay] = creates().slice(beforeGroup);
  assert.equal(lost.status, 503);
  assert.equal(replay.replayed, true);
  assert.equal(replay.idempotencyKey, lost.idempotencyKey);
  for (const t of many) assert.equal(mock.forToken(t).length, 1, t);

  // 503 (nothing sent) then success: every device once.
  const tokens = [device(), device(), device()];
  const other = await createSubscriberWithTokens(h, players, tokens);
  mock.failNext(503, { retryAfter: 1 });
  const messages = await settled(h, await trigger(h, wf, other, { orderId: 13 }), 3);
  assert.deepEqual(messages.map((x) => `${x.status}/${x.attempts}`), ['sent/2', 'sent/2', 'sent/2']);
  for (const t of tokens) assert.equal(mock.forToken(t).length, 1, t);
});

test('a refused key fails as configuration and keeps the tokens; Test Connection and Send Test', T, async () => {
  const wrong = await createIntegration(h, 'one-signal', { applicationId: mock.appId, apiKey: 'os_v2_app_wrong', baseUrl: mock.origin });
  const m = await expectRefusedCredentials(h, wf, wrong, { token: device(), testToken: device(), errorId: 'HTTP_403' });
  assert.ok(!JSON.stringify(m).includes('os_v2_app_wrong'), 'the key is not in the record');

  for (const integration of [players, aliases]) {
    const before = mock.delivered.length;
    const result = await testConnection(h, integration);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(mock.requests.at(-1).kind, 'list', 'a read-only request');
    assert.equal(mock.delivered.length, before, 'nobody reached');
  }

  const target = device();
  const sent = await sendTest(h, players, target, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.verdict, 'delivered', JSON.stringify(sent));
  const [got] = mock.forToken(target);
  assert.deepEqual(got.body.contents, { en: 'Pong' });
  assert.equal(sent.providerResponseId, got.notificationId);
});

test('malformed tokens are refused at registration', T, async () => {
  const subscriberId = await createSubscriberWithTokens(h, players, []);
  const res = await putTokens(h, subscriberId, players, ['has space']);
  assert.equal(res.status, 400, res.text);
});
