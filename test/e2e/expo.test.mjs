// Expo through Herald's public API to a loopback Expo Push Service (src/providers/expo/expo_mock.mjs:
// batches of up to 100, tickets, receipts after a delay, enhanced push security): what a device
// gets, batching, tickets then receipts (HERALD_EXPO_RECEIPT_DELAY=1), dead tokens found either way,
// Expo's rate limits retried, a refused access token, a receipt still checked across a restart,
// malformed tokens refused at registration, Test Connection and Send Test; the event webhooks a
// receipt causes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startExpoMock } from '../../src/providers/expo/expo_mock.mjs';
import { makeTempDir, novu, removeTempDir, startHerald } from './harness.mjs';
import {
  createIntegration, createSubscriberWithTokens, createWorkflow, deviceRecords, expectRefusedCredentials,
  listedTokens, putTokens, raw, sendTest, settled, startProviderSuite, stopProviderSuite, testConnection,
  trigger, uid, waitForMessages,
} from './provider_fixtures.mjs';
import { FAST_RETRY_ENV } from './push_fixtures.mjs';
import { Webhook } from 'standardwebhooks';
import { startReceiver, waitFor } from './receiver.mjs';

const T = { timeout: 60_000 };
const ACCESS_TOKEN = 'expo-e2e-access-token-0123456789';
let h;
let sdk;
let pki;
let mock;
let integ;
let wf;

const device = () => `ExponentPushToken[${uid('e2e')}]`;
const ticketsFor = (token) => mock.tickets.filter((t) => t.token === token);

before(async () => {
  ({ h, sdk, pki, mock, wf } = await startProviderSuite(
    (authority) => startExpoMock({ tls: authority.server }), { HERALD_EXPO_RECEIPT_DELAY: '1' }));
  mock.requireAccessToken(ACCESS_TOKEN);
  integ = await createIntegration(h, 'expo', { apiKey: ACCESS_TOKEN, baseUrl: mock.origin });
}, { timeout: 30_000 });

after(() => stopProviderSuite(h, mock));

test('the message: Novu\'s Expo shape, then the receipt confirms it', T, async () => {
  const d = device();
  const subscriberId = await createSubscriberWithTokens(h, integ, [d]);
  const tx = await trigger(h, wf, subscriberId, { orderId: 7 }, {
    expo: { sound: 'default', badge: 2, channelId: 'orders', data: { extra: 1 } },
  });
  const [m] = await settled(h, tx, 1);
  assert.equal(m.status, 'sent', JSON.stringify(m));
  assert.equal(m.attempts, 2, 'the send, then the receipt check');
  const [got] = ticketsFor(d);
  assert.deepEqual(got.message, {
    to: d, title: 'Hi Ann', body: 'Order 7', data: { orderId: 7, extra: 1 }, sound: 'default', badge: 2, channelId: 'orders',
  });
  assert.equal(got.accessToken, ACCESS_TOKEN);
  assert.equal(m.providerResponseId, got.ticket.id, 'the ticket id is kept');
  assert.ok(mock.receiptChecks.some((c) => c.ids.includes(got.ticket.id) && c.answered.includes(got.ticket.id)));
  const send = mock.sends.find((r) => Array.isArray(r.response?.data) && r.response.data.some((t) => t.id === got.ticket.id));
  assert.equal(send.headers['content-type'], 'application/json');
  assert.equal(send.headers['accept-encoding'], 'gzip, deflate');
});

test('250 tokens go in three requests of 100, 100 and 50, gzip-compressed', T, async () => {
  const tokens = Array.from({ length: 250 }, device);
  // A channel holds at most 100 tokens: three subscribers, one trigger.
  const subscribers = [];
  for (let i = 0; i < 250; i += 100) subscribers.push(await createSubscriberWithTokens(h, integ, tokens.slice(i, i + 100)));
  const before = mock.sends.length;
  const messages = await settled(h, await trigger(h, wf, subscribers, { orderId: 2 }), 250, 30_000);
  assert.equal(messages.filter((m) => m.status === 'sent').length, 250);
  const sends = mock.sends.slice(before);
  assert.deepEqual(sends.map((r) => r.messages).sort((a, b) => b - a), [100, 100, 50]);
  assert.ok(sends.every((r) => r.compressed && r.headers['content-encoding'] === 'gzip'));
  assert.deepEqual(new Set(tokens.map((t) => ticketsFor(t).length)), new Set([1]), 'each token once');
});

test('dead tokens, from a ticket or from a receipt, leave the subscriber as unsubscribed', T, async () => {
  const [byTicket, byReceipt, ok] = [device(), device(), device()];
  mock.setToken(byTicket, 'DeviceNotRegistered');
  mock.setToken(byReceipt, { receipt: 'DeviceNotRegistered' });
  const subscriberId = await createSubscriberWithTokens(h, integ, [byTicket, byReceipt, ok]);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 3 }), 3);
  const of = (token) => messages.find((m) => m.deviceTokens[0] === token);
  assert.equal(of(byTicket).status, 'error');
  assert.equal(of(byTicket).errorId, 'DeviceNotRegistered');
  assert.equal(of(byTicket).attempts, 1);
  assert.equal(of(byReceipt).status, 'error');
  assert.equal(of(byReceipt).errorId, 'DeviceNotRegistered');
  assert.equal(of(byReceipt).attempts, 2, 'accepted, then refused by the receipt');
  assert.equal(of(ok).status, 'sent');
  assert.deepEqual(await listedTokens(h, subscriberId, 'expo'), [ok]);
  const records = await deviceRecords(h, subscriberId);
  assert.equal(records.find((r) => r.token === byTicket).status, 'unsubscribed');
  assert.equal(records.find((r) => r.token === byReceipt).status, 'unsubscribed');
});

test('event webhooks: a receipt confirms (message.delivered) or finds the device gone (device.removed)', T, async () => {
  const events = await startReceiver({ path: '/events' });
  const created = await raw(h, 'POST', '/v1/webhooks/endpoints', { body: { url: events.url } });
  assert.equal(created.status, 201, created.text);
  const { _id: endpointId, secret } = created.json.data;
  try {
    const [gone, ok] = [device(), device()];
    mock.setToken(gone, { receipt: 'DeviceNotRegistered' });
    const subscriberId = await createSubscriberWithTokens(h, integ, [gone, ok]);
    const tx = await trigger(h, wf, subscriberId, { orderId: 9 });
    await settled(h, tx, 2);
    const received = () => events.requests
      .map((q) => new Webhook(secret).verify(q.text, q.headers))
      .filter((e) => e.data.object.transactionId === tx);
    await waitFor(() => received().length >= 5, 15_000,
      { describe: () => JSON.stringify(received().map((e) => e.type)) });
    const tokenOf = (e) => e.data.object.deviceToken ?? e.data.error?.push?.deviceToken;
    const typesFor = (token) => received().filter((e) => tokenOf(e) === token).map((e) => e.type);
    // Per message, in the order it happened: taken by Expo, then what its receipt said.
    assert.deepEqual(typesFor(ok), ['message.sent', 'message.delivered']);
    assert.deepEqual(typesFor(gone), ['message.sent', 'message.failed', 'device.removed']);
    const failed = received().find((e) => e.type === 'message.failed');
    assert.deepEqual(failed.data.error.push, { reason: 'token_invalid', deviceToken: gone });
    assert.equal(received().find((e) => e.type === 'device.removed').data.object.status, 'unsubscribed');
  } finally {
    await raw(h, 'DELETE', `/v1/webhooks/endpoints/${endpointId}`);
    await events.close();
  }
});

test('MessageRateExceeded, in a ticket or a receipt, and a 429 are sent again, then delivered', T, async () => {
  const [ticketRate, receiptRate, limited] = [device(), device(), device()];
  mock.setToken(ticketRate, [{ ticket: 'MessageRateExceeded' }]);
  mock.setToken(receiptRate, [{ receipt: 'MessageRateExceeded' }]);
  const subscriberId = await createSubscriberWithTokens(h, integ, [ticketRate, receiptRate]);
  const messages = await settled(h, await trigger(h, wf, subscriberId, { orderId: 4 }), 2);
  for (const m of messages) assert.equal(m.status, 'sent', JSON.stringify(m));
  assert.equal(ticketsFor(ticketRate).length, 2, 'refused once, then sent again');
  assert.equal(ticketsFor(receiptRate).length, 2, 'the receipt asked for it again');
  assert.deepEqual(ticketsFor(ticketRate).map((t) => t.ticket.status), ['error', 'ok']);

  const other = await createSubscriberWithTokens(h, integ, [limited]);
  const before = mock.sends.length;
  mock.failNextSends(1, { status: 429, code: 'TOO_MANY_REQUESTS', retryAfter: '1' });
  const started = Date.now();
  const [m] = await settled(h, await trigger(h, wf, other, { orderId: 5 }), 1);
  assert.equal(m.status, 'sent', JSON.stringify(m));
  assert.deepEqual(mock.sends.slice(before).map((r) => r.status), [429, 200]);
  assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was waited for');
});

test('a refused access token fails as configuration and keeps the token', T, async () => {
  const wrong = await createIntegration(h, 'expo', { apiKey: 'expo-wrong-token-0123456789', baseUrl: mock.origin });
  const m = await expectRefusedCredentials(h, wf, wrong, { token: device(), testToken: device(), errorId: 'UNAUTHORIZED' });
  assert.ok(!JSON.stringify(m).includes('expo-wrong-token'), 'no credential in the record');
});

test('malformed tokens are refused at registration (400); Expo tokens of both forms are taken', T, async () => {
  const subscriberId = await createSubscriberWithTokens(h, integ, []);
  for (const bad of ['abc', 'ExponentPushToken[]', 'ExponentPushToken[a b]', 'exponentpushtoken[abc]']) {
    const res = await putTokens(h, subscriberId, integ, [bad]);
    assert.equal(res.status, 400, `${bad}: ${res.text}`);
    assert.equal(res.json.statusCode, 400);
  }
  const res = await putTokens(h, subscriberId, integ, ['nope'], { append: true });
  assert.equal(res.status, 400, res.text);
  assert.match(res.json.message, /Expo push token/);
  assert.deepEqual(await listedTokens(h, subscriberId, 'expo'), []);
  const good = ['ExponentPushToken[aaaaaaaaaaaaaaaaaaaaaa]', 'ExpoPushToken[bbbbbbbbbbbbbbbbbbbbbb]'];
  const ok = await putTokens(h, subscriberId, integ, good);
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual((await listedTokens(h, subscriberId, 'expo')).sort(), good.sort());
});

test('Test Connection checks the access token with a receipt nobody has; Send Test is accepted', T, async () => {
  const checksBefore = mock.receiptChecks.length;
  const result = await testConnection(h, integ);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.deepEqual(mock.receiptChecks.slice(checksBefore).map((c) => c.ids), [['00000000-0000-0000-0000-000000000000']]);

  const wrong = await createIntegration(h, 'expo', { apiKey: 'expo-revoked-token-0123456789', baseUrl: mock.origin });
  const refused = await testConnection(h, wrong);
  assert.equal(refused.ok, false);
  assert.equal(refused.reason, 'UNAUTHORIZED');

  const d = device();
  const sent = await sendTest(h, integ, d, { title: 'Ping', body: 'Pong' });
  assert.deepEqual({ ok: sent.ok, verdict: sent.verdict }, { ok: true, verdict: 'accepted' }, JSON.stringify(sent));
  const [got] = ticketsFor(d);
  assert.equal(got.message.title, 'Ping');
  assert.equal(got.message.body, 'Pong');
  assert.equal(sent.providerResponseId, got.ticket.id);
  const bad = await raw(h, 'POST', `/v1/integrations/${integ._id}/send-test`, { body: { token: 'not-expo' } });
  assert.equal(bad.status, 400, bad.text);
  const failed = await sendTest(h, wrong, device());
  assert.equal(failed.verdict, 'failed-config');
  assert.equal(failed.reason, 'UNAUTHORIZED');
});

// The receipt is written with the message when the ticket comes back; a Herald stopped before the
// check is due checks it after it starts again.
test('a restart between the ticket and the receipt still checks the receipt', T, async () => {
  const dataDir = makeTempDir('herald-expo-restart-');
  const env = {
    ...FAST_RETRY_ENV, HERALD_CA_FILE: pki.ca.certPath, HERALD_RETRY_ATTEMPTS: '5', HERALD_EXPO_RECEIPT_DELAY: '4',
  };
  let first = await startHerald({ dataDir, env });
  let second;
  try {
    const keys = { HERALD_DEVELOPMENT_API_KEY: first.devKey, HERALD_PRODUCTION_API_KEY: first.prodKey };
    const integration = await createIntegration(first, 'expo', { apiKey: ACCESS_TOKEN, baseUrl: mock.origin });
    const workflow = await createWorkflow(novu(first));
    const d = device();
    const subscriberId = await createSubscriberWithTokens(first, integration, [d]);
    const tx = await trigger(first, workflow, subscriberId, { orderId: 9 });
    // Accepted, its receipt recorded: pending with one attempt.
    const [waiting] = await waitForMessages(first, tx, { count: 1, until: ([m]) => m.attempts === 1 && m.status === 'warning' });
    const [ticket] = ticketsFor(d);
    assert.equal(ticket.ticket.status, 'ok');
    assert.equal(waiting.providerResponseId, ticket.ticket.id);
    await first.stop();
    first = null;
    assert.ok(!mock.receiptChecks.some((c) => c.ids.includes(ticket.ticket.id)), 'not checked before the stop');

    second = await startHerald({ dataDir, env: { ...env, ...keys } });
    const [m] = await settled(second, tx, 1, 20_000);
    assert.equal(m.status, 'sent', JSON.stringify(m));
    assert.equal(m.attempts, 2);
    await waitFor(() => mock.receiptChecks.some((c) => c.answered.includes(ticket.ticket.id)), 5_000);
    assert.equal(ticketsFor(d).length, 1, 'not sent again');
  } finally {
    if (first) await first.stop();
    if (second) await second.stop();
    removeTempDir(dataDir);
  }
});
