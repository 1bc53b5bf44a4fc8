// Proves the Expo mock (src/providers/expo/expo_mock.mjs) behaves like the Expo Push Service, by
// driving it with Expo's own client, expo-server-sdk 7.2.0 (pointed at the mock with
// EXPO_BASE_URL, which the SDK reads once when it is loaded: hence the dynamic import), and with
// raw requests for what the SDK never sends. Needs no Herald binary. Every test is bounded in time.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Agent } from 'undici';
import { T, request, thrownBy, useTestPki } from './mock_clients.mjs';
import { startExpoMock } from '../../src/providers/expo/expo_mock.mjs';

const pki = useTestPki();
let mock;
let Expo;
let dispatcher;
let n = 0;
const token = (tag = 't') => `ExponentPushToken[${tag}-${++n}]`;

const client = (options = {}) => new Expo({ httpAgent: dispatcher, retryMinTimeout: 20, ...options });

describe('expo mock', () => {
  // Inside the suite: the test PKI (a root hook) exists by then.
  before(async () => {
    mock = await startExpoMock({ tls: pki().server });
    process.env.EXPO_BASE_URL = mock.origin;
    ({ Expo } = await import('expo-server-sdk'));
    dispatcher = new Agent({ connect: { ca: pki().ca.cert } });
  });

  after(async () => {
    await dispatcher?.close();
    await mock?.close();
  });

  test('the SDK sends a chunk and reads its tickets, then the receipts', T, async () => {
    const expo = client();
    const tokens = [token(), token(), token()];
    const messages = tokens.map((to, i) => ({ to, title: 'Hi', body: `n=${i}`, data: { n: i }, sound: 'default', badge: 1 }));
    const chunks = expo.chunkPushNotifications(messages);
    assert.equal(chunks.length, 1);
    const tickets = await expo.sendPushNotificationsAsync(chunks[0]);
    assert.equal(tickets.length, 3);
    for (const t of tickets) {
      assert.equal(t.status, 'ok');
      assert.match(t.id, /^[0-9a-f-]{36}$/);
    }
    const seen = tokens.map((t) => mock.forToken(t)[0]);
    assert.deepEqual(seen.map((r) => r.message.body), ['n=0', 'n=1', 'n=2']);
    assert.deepEqual(seen[1].message.data, { n: 1 });
    const sent = mock.sends.at(-1);
    assert.match(sent.headers['user-agent'], /^expo-server-sdk-node\/7\.2\.0$/);
    assert.equal(sent.headers['accept-encoding'], 'gzip, deflate');
    assert.equal(sent.headers['content-type'], 'application/json');
    assert.equal(sent.headers.authorization, undefined);

    const receipts = await expo.getPushNotificationReceiptsAsync(tickets.map((t) => t.id));
    assert.deepEqual(Object.keys(receipts).sort(), tickets.map((t) => t.id).sort());
    for (const r of Object.values(receipts)) assert.deepEqual(r, { status: 'ok' });
  });

  test('bodies over 1 KiB come gzip-compressed and are read; so are large replies', T, async () => {
    const expo = client();
    const messages = Array.from({ length: 40 }, (_, i) => ({ to: token('gz'), title: 'Hello', body: `message number ${i}` }));
    const tickets = await expo.sendPushNotificationsAsync(messages);
    assert.equal(tickets.length, 40);
    const sent = mock.sends.at(-1);
    assert.equal(sent.headers['content-encoding'], 'gzip');
    assert.equal(sent.compressed, true);
    assert.equal(sent.messages, 40);
    assert.equal(sent.response.data.length, 40);
    assert.deepEqual(mock.forToken(messages[39].to)[0].message, messages[39]);

    // A deflate body, and a body in an encoding Expo does not take.
    const deflated = await request(`${mock.origin}/--/api/v2/push/send`, {
      headers: { 'content-type': 'application/json', 'content-encoding': 'deflate', 'accept-encoding': 'identity' },
      body: deflateSync(JSON.stringify([{ to: token('raw'), body: 'x' }])),
    });
    assert.equal(deflated.status, 200, deflated.text);
    assert.equal(deflated.json.data[0].status, 'ok');
    const brotli = await request(`${mock.origin}/--/api/v2/push/send`, {
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, body: 'xx',
    });
    assert.equal(brotli.status, 415);
  });

  test('error tickets: dead, malformed and oversized tokens, scripted errors once', T, async () => {
    const expo = client();
    const [dead, rate, ok] = [token('dead'), token('rate'), token('ok')];
    mock.setToken(dead, 'DeviceNotRegistered');
    mock.setToken(rate, [{ ticket: 'MessageRateExceeded' }]);
    const tickets = await expo.sendPushNotificationsAsync([
      { to: dead, body: 'a' },
      { to: 'not-an-expo-token', body: 'b' },
      { to: rate, body: 'c' },
      { to: ok, body: 'd', data: { blob: 'x'.repeat(5000) } },
      { to: ok, body: 'e' },
    ]);
    assert.deepEqual(tickets[0], {
      status: 'error', message: `"${dead}" is not a registered push notification recipient`,
      details: { error: 'DeviceNotRegistered', expoPushToken: dead },
    });
    assert.equal(tickets[1].status, 'error');
    assert.equal(tickets[1].message, '"not-an-expo-token" is not a valid Expo push token');
    assert.equal(tickets[1].details.error, 'DeviceNotRegistered');
    assert.equal(tickets[2].details.error, 'MessageRateExceeded');
    assert.equal(tickets[3].details.error, 'MessageTooBig');
    assert.equal(tickets[4].status, 'ok');
    // The scripted rate limit was for one send: the next one goes through.
    const [again] = await expo.sendPushNotificationsAsync([{ to: rate, body: 'c' }]);
    assert.equal(again.status, 'ok');
  });

  test('receipts: errors by type, absent until they appear', T, async () => {
    const expo = client();
    const [gone, creds] = [token('gone'), token('creds')];
    mock.setToken(gone, { receipt: 'DeviceNotRegistered' });
    mock.setToken(creds, { receipt: 'InvalidCredentials' });
    mock.setReceiptDelay(400);
    try {
      const tickets = await expo.sendPushNotificationsAsync([{ to: gone, body: 'x' }, { to: creds, body: 'y' }]);
      assert.deepEqual(tickets.map((t) => t.status), ['ok', 'ok']);
      const ids = tickets.map((t) => t.id);
      assert.deepEqual(await expo.getPushNotificationReceiptsAsync(ids), {}, 'not there yet');
      await new Promise((r) => setTimeout(r, 450));
      const receipts = await expo.getPushNotificationReceiptsAsync([...ids, '00000000-0000-0000-0000-000000000000']);
      assert.deepEqual(Object.keys(receipts).sort(), [...ids].sort(), 'an unknown id is absent');
      assert.equal(receipts[ids[0]].status, 'error');
      assert.deepEqual(receipts[ids[0]].details, { error: 'DeviceNotRegistered', expoPushToken: gone });
      assert.equal(receipts[ids[1]].details.error, 'InvalidCredentials');
    } finally {
      mock.setReceiptDelay(0);
    }
  });

  test('limits: 101 messages, 1001 receipt ids, tokens of two projects', T, async () => {
    const expo = client();
    const tooMany = Array.from({ length: 101 }, () => ({ to: token('many'), body: 'x' }));
    const e1 = await thrownBy(expo.sendPushNotificationsAsync(tooMany));
    assert.equal(e1.code, 'PUSH_TOO_MANY_NOTIFICATIONS');
    assert.equal(e1.statusCode, 400);
    assert.equal(expo.chunkPushNotifications(tooMany).length, 2, 'what the SDK does about it');

    const e2 = await thrownBy(expo.getPushNotificationReceiptsAsync(Array.from({ length: 1001 }, (_, i) => `id-${i}`)));
    assert.equal(e2.code, 'PUSH_TOO_MANY_RECEIPTS');
    assert.equal(e2.statusCode, 400);

    const [a, b] = [token('proj'), token('proj')];
    mock.setProject(b, '@ann/other-app');
    const e3 = await thrownBy(expo.sendPushNotificationsAsync([{ to: a, body: 'x' }, { to: b, body: 'y' }]));
    assert.equal(e3.code, 'PUSH_TOO_MANY_EXPERIENCE_IDS');
    assert.deepEqual(e3.details, { '@herald/default': [a], '@ann/other-app': [b] });
  });

  test('enhanced push security: no token or a wrong one is UNAUTHORIZED', T, async () => {
    mock.requireAccessToken('expo-secret-token');
    try {
      const missing = await thrownBy(client().sendPushNotificationsAsync([{ to: token(), body: 'x' }]));
      assert.equal(missing.code, 'UNAUTHORIZED');
      assert.equal(missing.statusCode, 401);
      const wrong = await thrownBy(client({ accessToken: 'nope' }).getPushNotificationReceiptsAsync(['x']));
      assert.equal(wrong.code, 'UNAUTHORIZED');
      const [ok] = await client({ accessToken: 'expo-secret-token' }).sendPushNotificationsAsync([{ to: token(), body: 'x' }]);
      assert.equal(ok.status, 'ok');
      assert.equal(mock.sends.at(-1).headers.authorization, 'Bearer expo-secret-token');
      assert.equal(mock.delivered.at(-1).accessToken, 'expo-secret-token');
    } finally {
      mock.requireAccessToken(null);
    }
  });

  test('whole-request failures: 429 (the SDK retries it), 503 (it does not)', T, async () => {
    const expo = client();
    const before = mock.sends.length;
    mock.failNextSends(1, { status: 429, code: 'TOO_MANY_REQUESTS', retryAfter: '1' });
    const [t] = await expo.sendPushNotificationsAsync([{ to: token('limited'), body: 'x' }]);
    assert.equal(t.status, 'ok');
    assert.deepEqual(mock.sends.slice(before).map((r) => r.status), [429, 200]);
    assert.equal(mock.sends.at(-2).response.errors[0].code, 'TOO_MANY_REQUESTS');

    mock.failNextSends(1, { status: 503 });
    const down = await thrownBy(expo.sendPushNotificationsAsync([{ to: token('down'), body: 'x' }]));
    assert.equal(down.statusCode, 503);
    mock.failNextReceiptChecks(1, { status: 500 });
    const checks = await thrownBy(expo.getPushNotificationReceiptsAsync(['x']));
    assert.equal(checks.statusCode, 500);
  });

  test('a single message with one recipient is answered with one ticket object; bad fields refuse the request', T, async () => {
    const one = await request(`${mock.origin}/--/api/v2/push/send`, {
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: token('single'), body: 'x' }),
    });
    assert.equal(one.status, 200);
    assert.equal(one.json.data.status, 'ok', 'an object, not an array');
    const many = await request(`${mock.origin}/--/api/v2/push/send`, {
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: [token('multi'), token('multi')], body: 'x' }),
    });
    assert.equal(many.json.data.length, 2);

    const expo = client();
    const bad = await thrownBy(expo.sendPushNotificationsAsync([{ to: token(), body: 'x' }, { to: token(), badge: 'one' }]));
    assert.equal(bad.code, 'VALIDATION_ERROR');
    assert.equal(bad.statusCode, 400);
    const notJson = await request(`${mock.origin}/--/api/v2/push/send`, { headers: { 'content-type': 'application/json' }, body: '{' });
    assert.equal(notJson.status, 400);
  });
});
