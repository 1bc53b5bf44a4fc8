// Proves the OneSignal mock (src/providers/one_signal/one_signal_mock.mjs) behaves like
// OneSignal's REST API by driving it with the official SDK (@onesignal/node-onesignal 5.18.0,
// pointed at it through ServerConfiguration): sends, invalid ids, idempotent replays through the
// SDK's own retry helper, and the errors the SDK raises. Needs no Herald binary.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { T, request, thrownBy, useTestPki, withMock } from './mock_clients.mjs';
import { startOneSignalMock } from '../../src/providers/one_signal/one_signal_mock.mjs';

const OneSignal = createRequire(import.meta.url)('@onesignal/node-onesignal');
const pki = useTestPki();

function sdk(os, key = os.apiKey) {
  const configuration = OneSignal.createConfiguration({
    restApiKey: key,
    baseServer: new OneSignal.ServerConfiguration(os.origin, {}),
  });
  return { configuration, client: new OneSignal.DefaultApi(configuration) };
}

function notification(os, fields) {
  return Object.assign(new OneSignal.Notification(), { app_id: os.appId, contents: { en: 'Hello' }, ...fields });
}

describe('one-signal mock', () => {
  test('the SDK sends to subscription ids and external ids with Key auth', T, async () => {
    await withMock(startOneSignalMock, {}, async (os) => {
      const { client } = sdk(os);
      const sent = await client.createNotification(notification(os, {
        include_subscription_ids: ['s-1', 's-2'],
        headings: { en: 'Title' },
        data: { k: 'v' },
        ios_badge_type: 'Increase',
        ios_badge_count: 1,
      }));
      assert.match(sent.id, /^[0-9a-f-]{36}$/);
      assert.equal(OneSignal.isMessageSent(sent), true);
      assert.deepEqual(os.delivered.map((d) => d.token), ['s-1', 's-2']);
      const rec = os.requests.at(-1);
      assert.equal(rec.path, '/notifications');
      assert.equal(rec.scheme, 'Key');
      assert.equal(rec.json.ios_badgeType, 'Increase', 'the SDK writes the wire name');

      const byAlias = await client.createNotification(notification(os, {
        include_aliases: { external_id: ['user-1'] }, target_channel: 'push',
      }));
      assert.equal(OneSignal.isMessageSent(byAlias), true);
      assert.equal(os.forToken('user-1')[0].mode, 'include_aliases');

      // The view-notifications call Herald's connection test makes.
      const listed = await client.getNotifications(os.appId, 1);
      assert.equal(listed.total_count, 2);
      assert.equal(listed.notifications.length, 1);
    });
  });

  test('invalid ids are listed, and nobody subscribed is an empty id', T, async () => {
    await withMock(startOneSignalMock, {}, async (os) => {
      const { client } = sdk(os);
      os.markInvalid('s-bad', 'u-bad');
      os.markUnsubscribed('s-gone');
      const partial = await client.createNotification(notification(os, { include_subscription_ids: ['s-ok', 's-bad', 's-gone'] }));
      assert.equal(OneSignal.isMessageSent(partial), true);
      assert.deepEqual(partial.errors, { invalid_player_ids: ['s-bad'] });
      assert.deepEqual(os.delivered.map((d) => d.token), ['s-ok']);

      const aliases = await client.createNotification(notification(os, {
        include_aliases: { external_id: ['u-ok', 'u-bad'] }, target_channel: 'push',
      }));
      assert.deepEqual(aliases.errors, { invalid_aliases: { external_id: ['u-bad'] } });

      const nobody = await client.createNotification(notification(os, { include_subscription_ids: ['s-bad', 's-gone'] }));
      assert.equal(nobody.id, '');
      assert.deepEqual(nobody.errors, ['All included players are not subscribed']);
      assert.equal(OneSignal.isMessageNotSent(nobody), true);
    });
  });

  test('idempotency: the SDK\'s retry helper resends a lost reply with the same key; one delivery', T, async () => {
    await withMock(startOneSignalMock, {}, async (os) => {
      const { configuration } = sdk(os);
      os.failNext(503, { afterDelivery: true });
      const { response, wasReplayed } = await OneSignal.createNotificationWithRetry(
        configuration, notification(os, { include_subscription_ids: ['s-1'] }), { baseDelayMs: 1000 });
      assert.equal(OneSignal.isMessageSent(response), true);
      assert.equal(wasReplayed, true);
      assert.equal(os.delivered.length, 1, 'delivered once');
      assert.equal(os.replays, 1);
      const keys = os.requests.map((r) => r.idempotencyKey);
      assert.equal(keys.length, 2);
      assert.equal(keys[0], keys[1]);
      assert.equal(os.requests[1].status, 200);

      // 429 with Retry-After, then success: nothing was created by the refused one.
      os.failNext(429, { retryAfter: 1 });
      const again = await OneSignal.createNotificationWithRetry(
        configuration, notification(os, { include_subscription_ids: ['s-2'] }));
      assert.equal(again.wasReplayed, false);
      assert.equal(os.forToken('s-2').length, 1);
    });
  });

  test('errors surface as the SDK expects', T, async () => {
    await withMock(startOneSignalMock, {}, async (os) => {
      const wrongKey = await thrownBy(sdk(os, 'os_v2_app_wrong').client.createNotification(
        notification(os, { include_subscription_ids: ['s-1'] })));
      assert.ok(wrongKey instanceof OneSignal.ApiException);
      assert.equal(wrongKey.code, 403);
      assert.match(JSON.stringify(wrongKey.body), /Access denied/);

      const { client } = sdk(os);
      const untargeted = await thrownBy(client.createNotification(notification(os, {})));
      assert.equal(untargeted.code, 400);
      assert.match(untargeted.body.errors[0], /You must include which players/);

      const noContent = await thrownBy(client.createNotification(
        notification(os, { include_subscription_ids: ['s-1'], contents: undefined })));
      assert.equal(noContent.code, 400);

      const otherApp = await thrownBy(client.createNotification(
        Object.assign(notification(os, { include_subscription_ids: ['s-1'] }), { app_id: randomUUID() })));
      assert.equal(otherApp.code, 400);
      assert.match(otherApp.body.errors[0], /app_id not found/);

      os.failNext(429, { retryAfter: 3 });
      const limited = await thrownBy(client.createNotification(notification(os, { include_subscription_ids: ['s-1'] })));
      assert.equal(limited.code, 429);
      assert.equal(limited.headers['retry-after'], '3');
      assert.deepEqual(limited.body.errors, ['API rate limit exceeded.']);

      os.failNext(503);
      assert.equal((await thrownBy(client.createNotification(notification(os, { include_subscription_ids: ['s-1'] })))).code, 503);
      assert.equal(os.delivered.length, 0);
    });
  });

  test('the legacy endpoint over TLS: Basic auth, include_player_ids, limits', T, async () => {
    await withMock(startOneSignalMock, { tls: pki().server }, async (os) => {
      const post = (body, headers = {}) => request(`${os.origin}/api/v1/notifications`, {
        headers: Object.fromEntries(Object.entries({
          authorization: `Basic ${os.apiKey}`, 'content-type': 'application/json; charset=utf-8', ...headers,
        }).filter(([, v]) => v !== undefined)),
        body: JSON.stringify({ app_id: os.appId, contents: { en: 'Hi' }, ...body }),
      });
      let r = await post({ include_player_ids: ['p-1'] });
      assert.equal(r.status, 200, r.text);
      assert.equal(os.requests.at(-1).scheme, 'Basic');
      assert.equal(os.forToken('p-1')[0].mode, 'include_player_ids');

      r = await post({ include_player_ids: Array.from({ length: 2001 }, (_, i) => `p-${i}`) });
      assert.equal(r.status, 400);
      r = await post({ include_player_ids: ['p-1'], include_aliases: { external_id: ['u'] }, target_channel: 'push' });
      assert.equal(r.status, 400, 'one targeting mode');
      r = await post({ include_aliases: { external_id: ['u'] } });
      assert.equal(r.status, 400, 'aliases need target_channel');
      r = await post({ include_player_ids: ['p-1'], data: { big: 'x'.repeat(2048) } });
      assert.equal(r.status, 400, 'data is at most 2048 bytes');
      r = await post({ include_player_ids: ['p-1'], idempotency_key: 'not-a-uuid' });
      assert.equal(r.status, 400);
      r = await post({ include_player_ids: ['p-1'] }, { 'content-type': 'text/plain' });
      assert.deepEqual([r.status, r.json.errors[0]], [400, 'app_id not found. You may be missing a Content-Type: application/json header.']);
      r = await post({ include_player_ids: ['p-1'] }, { authorization: undefined });
      assert.equal(r.status, 401);

      // A repeat of an idempotency key answers the first result and delivers nothing.
      const key = randomUUID();
      const first = await post({ include_player_ids: ['p-2', 'p-3'], idempotency_key: key });
      const second = await post({ include_player_ids: ['p-2', 'p-3'], idempotency_key: key });
      assert.deepEqual(second.json, first.json);
      assert.equal(second.headers['idempotent-replayed'], 'true');
      assert.equal(first.headers['idempotent-replayed'], undefined);
      assert.equal(os.forToken('p-2').length, 1);
    });
  });
});
