// Pushpad through Herald to a loopback Pushpad (src/providers/pushpad/pushpad_mock.mjs: token and
// project checks, both body shapes, 201 with the subscribed subset of the uids): the notification
// a uid gets, identical messages in few requests, uids without a subscription failed and kept,
// retries, refused tokens and projects as configuration errors, Test Connection and Send Test.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPushpadMock } from '../../src/providers/pushpad/pushpad_mock.mjs';
import {
  createIntegration, createSubscriberWithTokens, deviceRecords, expectRefusedCredentials, listedTokens,
  putTokens, sendTest, sendToNewTopic, settled, startProviderSuite, stopProviderSuite, testConnection,
  trigger, uid,
} from './provider_fixtures.mjs';

const T = { timeout: 60_000 };
let h;
let sdk;
let mock;
let integ;
let wf;

const uidOf = () => uid('pp-uid');
const creates = () => mock.requests.filter((r) => r.kind === 'create');

before(async () => {
  ({ h, sdk, mock, wf } = await startProviderSuite((pki) => startPushpadMock({ tls: pki.server, otherProjects: [777] })));
  integ = await createIntegration(h, 'pushpad', { apiKey: mock.token, applicationId: String(mock.projectId), baseUrl: mock.origin });
}, { timeout: 30_000 });

after(() => stopProviderSuite(h, mock));

test('the notification: documented body and Token auth, one request for a subscriber\'s uids', T, async () => {
  const uids = [uidOf(), uidOf()];
  const subscriberId = await createSubscriberWithTokens(h, integ, uids);
  const before = creates().length;
  const tx = await trigger(h, wf, subscriberId, { orderId: 7 }, {
    pushpad: { url: 'https://example.com/o/7', icon: 'https://example.com/i.png', ttl: 600, urgent: true },
  });
  const messages = await settled(h, tx, 2);
  assert.deepEqual(messages.map((m) => m.status), ['sent', 'sent'], JSON.stringify(messages));
  const sent = creates().slice(before);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].scheme, 'Token');
  assert.equal(sent[0].shape, 'wrapped');
  assert.deepEqual([...sent[0].json.uids].sort(), [...uids].sort());
  assert.deepEqual(sent[0].json.notification, {
    body: 'Order 7', title: 'Hi Ann', target_url: 'https://example.com/o/7', icon_url: 'https://example.com/i.png',
    ttl: 600, urgent: true,
  });
  const id = String(mock.forUid(uids[0])[0].notificationId);
  for (const m of messages) assert.equal(m.providerResponseId, id);
});

test('a topic of 60 subscribers goes out in a few requests', T, async () => {
  const uids = Array.from({ length: 60 }, uidOf);
  const before = creates().length;
  await sendToNewTopic(h, sdk, wf, integ, uids);
  const sent = creates().slice(before);
  assert.deepEqual(sent.flatMap((r) => r.json.uids).sort(), [...uids].sort(), 'each uid once');
  assert.ok(sent.length <= 6, `60 identical messages in ${sent.length} requests`);
});

test('a uid without a subscription fails as NOT_SUBSCRIBED and is kept; the others are delivered', T, async () => {
  const [ok, none] = [uidOf(), uidOf()];
  mock.markUnsubscribed(none);
  const subscriberId = await createSubscriberWithTokens(h, integ, [ok, none]);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 10 }), 2);
  assert.deepEqual(messages.map((m) => m.errorId ?? 'sent').sort(), ['NOT_SUBSCRIBED', 'sent']);
  assert.deepEqual((await listedTokens(h, subscriberId, 'pushpad')).sort(), [ok, none].sort());
  assert.equal((await deviceRecords(h, subscriberId)).find((r) => r.token === none).status, 'active');
});

test('429 and 503 are retried; every uid gets it once', T, async () => {
  const u = uidOf();
  const subscriberId = await createSubscriberWithTokens(h, integ, [u]);
  mock.failNext(429, { retryAfter: 1 });
  mock.failNext(503);
  const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 11 }), 1);
  assert.deepEqual([m.status, m.attempts], ['sent', 3], JSON.stringify(m));
  assert.equal(mock.forUid(u).length, 1);
});

test('a wrong token, another account\'s project and an unknown one fail as configuration', T, async () => {
  const cases = [
    [{ apiKey: 'wrong-token', applicationId: String(mock.projectId) }, 'HTTP_401'],
    [{ apiKey: mock.token, applicationId: '777' }, 'HTTP_403'],
    [{ apiKey: mock.token, applicationId: '778' }, 'HTTP_404'],
  ];
  for (const [credentials, errorId] of cases) {
    const integration = await createIntegration(h, 'pushpad', { ...credentials, baseUrl: `${mock.origin}/api/v1` });
    await expectRefusedCredentials(h, wf, integration, { token: uidOf(), testToken: uidOf(), errorId });
  }
});

test('Test Connection reads the project; Send Test reaches one uid; bad overrides fail typed', T, async () => {
  const before = mock.delivered.length;
  const result = await testConnection(h, integ);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(mock.requests.at(-1).kind, 'project');
  assert.equal(mock.delivered.length, before);

  const u = uidOf();
  const sent = await sendTest(h, integ, u, { title: 'Ping', body: 'Pong' });
  assert.equal(sent.verdict, 'delivered', JSON.stringify(sent));
  assert.deepEqual(mock.forUid(u)[0].notification, { body: 'Pong', title: 'Ping' });

  const subscriberId = await createSubscriberWithTokens(h, integ, [uidOf()]);
  const count = creates().length;
  for (const [overrides, errorId] of [[{ ttl: -1 }, 'INVALID_OVERRIDES'], [{ send_at: '2030-01-01T00:00:00Z' }, 'INVALID_OVERRIDES'],
    [{ custom_data: 'x'.repeat(40_000) }, 'MESSAGE_TOO_LARGE']]) {
    const [m] = await settled(h, await trigger(h, wf, subscriberId, { orderId: 13 }, { pushpad: overrides }), 1);
    assert.deepEqual([m.status, m.errorId], ['error', errorId], JSON.stringify(m));
  }
  assert.equal(creates().length, count, 'nothing was sent');

  const res = await putTokens(h, subscriberId, integ, ['a b']);
  assert.equal(res.status, 400, res.text);
});
