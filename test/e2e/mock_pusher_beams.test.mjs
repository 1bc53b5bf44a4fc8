// Proves the Pusher Beams mock (src/providers/pusher_beams/pusher_beams_mock.mjs) behaves like
// the Beams publish API by driving it with the official server SDK
// (@pusher/push-notifications-server 1.2.7, `endpoint` + `port`, which speak plain HTTP):
// publishes to users and interests, and the errors the SDK reports. Needs no Herald binary.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { T, request, useTestPki, withMock } from './mock_clients.mjs';
import { startPusherBeamsMock } from '../../src/providers/pusher_beams/pusher_beams_mock.mjs';

const PushNotifications = createRequire(import.meta.url)('@pusher/push-notifications-server');
const pki = useTestPki();

const client = (beams, secretKey = beams.secretKey, instanceId = beams.instanceId) =>
  new PushNotifications({ instanceId, secretKey, endpoint: '127.0.0.1', port: beams.port });

const PUBLISH = {
  apns: { aps: { alert: { title: 'T', body: 'B' } } },
  fcm: { notification: { title: 'T', body: 'B' } },
  web: { notification: { title: 'T', body: 'B', deep_link: 'https://example.com' }, time_to_live: 3600 },
};

describe('pusher-beams mock', () => {
  test('the SDK publishes to users and interests', T, async () => {
    await withMock(startPusherBeamsMock, {}, async (beams) => {
      const sdk = client(beams);
      const r = await sdk.publishToUsers(['user-1', 'user-2'], PUBLISH);
      assert.match(r.publishId, /^pubid-/);
      assert.deepEqual(beams.delivered.map((d) => d.user), ['user-1', 'user-2']);
      const rec = beams.requests.at(-1);
      assert.equal(rec.path, `/publish_api/v1/instances/${beams.instanceId}/publishes/users`);
      assert.equal(rec.headers.authorization, `Bearer ${beams.secretKey}`);
      assert.match(rec.headers['x-pusher-library'], /pusher-push-notifications-node 1\.2\.7/);
      assert.deepEqual(rec.json, { ...PUBLISH, users: ['user-1', 'user-2'] });

      const i = await sdk.publishToInterests(['hello', 'donuts'], PUBLISH);
      assert.match(i.publishId, /^pubid-/);
      assert.equal(beams.publishes.at(-1).kind, 'interests');

      // A deleted user is no error: the publish reaches nobody there.
      await sdk.deleteUser('user-2');
      await sdk.publishToUsers(['user-1', 'user-2'], PUBLISH);
      assert.equal(beams.forUser('user-2').length, 1);
      assert.equal(beams.forUser('user-1').length, 2);
    });
  });

  test('errors reach the SDK as "<status> <error> - <description>"', T, async () => {
    await withMock(startPusherBeamsMock, {}, async (beams) => {
      await assert.rejects(client(beams, 'WRONG').publishToUsers(['u'], PUBLISH),
        /^Error: 401 Unauthorized - Incorrect API Key$/);
      await assert.rejects(client(beams, beams.secretKey, 'no-such-instance').publishToUsers(['u'], PUBLISH),
        /^Error: 404 Instance not found/);
      const sdk = client(beams);
      await assert.rejects(sdk.publishToUsers(['u'], {}), /^Error: 422 Unprocessable Entity - the publish must contain at least one of apns, fcm or web$/);
      await assert.rejects(sdk.publishToUsers(['u'], { web: { notification: { title: 'x' }, data: { pusher: 1 } } }),
        /^Error: 422 Unprocessable Entity - web.data must not contain/);
      await assert.rejects(sdk.publishToUsers(['u'], { web: { notification: {}, time_to_live: 2419201 } }), /^Error: 422/);
      beams.failNext(429, { retryAfter: 2 });
      await assert.rejects(sdk.publishToUsers(['u'], PUBLISH), /^Error: 429 Rate Limited/);
      beams.failNext(500);
      await assert.rejects(sdk.publishToUsers(['u'], PUBLISH), /^Error: 500 Something went wrong/);
      assert.equal(beams.delivered.length, 0);
      await sdk.publishToUsers(['u'], PUBLISH);
      assert.equal(beams.delivered.length, 1);
    });
  });

  test('over TLS: the body checks the SDK leaves to the service', T, async () => {
    await withMock(startPusherBeamsMock, { tls: pki().server }, async (beams) => {
      const url = `${beams.origin}/publish_api/v1/instances/${beams.instanceId}/publishes/users`;
      const post = (body, headers = {}) => request(url, {
        headers: Object.fromEntries(Object.entries({
          authorization: `Bearer ${beams.secretKey}`, 'content-type': 'application/json', ...headers,
        }).filter(([, v]) => v !== undefined)),
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      let r = await post({ users: ['a'], ...PUBLISH });
      assert.equal(r.status, 200, r.text);
      r = await post({ users: ['a'], ...PUBLISH }, { 'content-type': 'text/plain' });
      assert.deepEqual([r.status, r.json.error], [400, 'Invalid content type']);
      r = await post({ users: ['a'], ...PUBLISH }, { authorization: undefined });
      assert.deepEqual([r.status, r.json.error], [400, 'Incomplete Request']);
      r = await post('{"users":');
      assert.deepEqual([r.status, r.json.error], [400, 'Bad request']);
      r = await post({ users: ['a'], web: { notification: { title: 'x' }, data: { d: 'x'.repeat(200 * 1024) } } });
      assert.deepEqual([r.status, r.json.error], [400, 'Bad request']);
      r = await post({ users: Array.from({ length: 1001 }, (_, n) => `u${n}`), ...PUBLISH });
      assert.equal(r.status, 422);
      r = await post({ users: [], ...PUBLISH });
      assert.equal(r.status, 422, 'the connection test relies on this');
      r = await post({ users: ['é'.repeat(82)], ...PUBLISH });
      assert.equal(r.status, 200, '164 bytes of UTF-8');
      r = await post({ users: ['é'.repeat(83)], ...PUBLISH });
      assert.equal(r.status, 422, '166 bytes');
      r = await post({ users: ['a'], ...PUBLISH, extra: 1 });
      assert.equal(r.status, 422);
    });
  });
});
