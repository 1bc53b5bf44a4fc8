// Proves the Pushpad mock (src/providers/pushpad/pushpad_mock.mjs) behaves like Pushpad's REST
// API by driving it with the official SDK (pushpad 2.0.0, `baseUrl` = the mock's /api/v1):
// notifications to uids, the subset of uids in the reply, the project, and the errors the SDK
// raises. Needs no Herald binary.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Pushpad from 'pushpad';
import { T, request, thrownBy, useTestPki, withMock } from './mock_clients.mjs';
import { startPushpadMock } from '../../src/providers/pushpad/pushpad_mock.mjs';

const pki = useTestPki();

const client = (pp, authToken = pp.token, projectId = pp.projectId) =>
  new Pushpad({ authToken, projectId, baseUrl: pp.apiBase, timeout: 5000 });

describe('pushpad mock', () => {
  test('the SDK creates notifications (flat body, Bearer); the reply lists the subscribed uids', T, async () => {
    await withMock(startPushpadMock, {}, async (pp) => {
      const sdk = client(pp);
      pp.markUnsubscribed('uid-2');
      const r = await sdk.notification.create({
        body: 'Hello', title: 'Hi', target_url: 'https://example.com', uids: ['uid-1', 'uid-2', 'uid-3'],
      });
      assert.equal(typeof r.id, 'number');
      assert.deepEqual(r.uids, ['uid-1', 'uid-3']);
      assert.equal(r.scheduled, 2);
      const rec = pp.requests.at(-1);
      assert.equal(rec.scheme, 'Bearer');
      assert.equal(rec.shape, 'flat');
      assert.deepEqual(pp.delivered.map((d) => d.uid), ['uid-1', 'uid-3']);

      // No uids: a broadcast, and the reply has none.
      const all = await sdk.notification.create({ body: 'To everyone' });
      assert.equal(all.uids, undefined);
      const later = await sdk.notification.create({ body: 'Later', uids: ['uid-1'], send_at: '2030-01-01T00:00:00Z' });
      assert.deepEqual([later.uids, later.send_at], [undefined, '2030-01-01T00:00:00Z']);

      const project = await sdk.project.find(pp.projectId);
      assert.equal(project.id, pp.projectId);
    });
  });

  test('errors surface as PushpadError with the status', T, async () => {
    await withMock(startPushpadMock, { otherProjects: [99] }, async (pp) => {
      assert.equal((await thrownBy(client(pp, 'wrong').notification.create({ body: 'x', uids: ['a'] }))).status, 401);
      assert.equal((await thrownBy(client(pp, pp.token, 99).notification.create({ body: 'x', uids: ['a'] }))).status, 403);
      assert.equal((await thrownBy(client(pp, pp.token, 100).notification.create({ body: 'x', uids: ['a'] }))).status, 404);
      const sdk = client(pp);
      const blank = await thrownBy(sdk.notification.create({ title: 'no body', uids: ['a'] }));
      assert.equal(blank.status, 422);
      assert.deepEqual(blank.body, { error: 'body can\'t be blank' });
      for (const status of [402, 429, 500, 503]) {
        pp.failNext(status, { retryAfter: status === 429 ? 2 : undefined });
        const e = await thrownBy(sdk.notification.create({ body: 'x', uids: ['a'] }));
        assert.equal(e.status, status);
        if (status === 429) assert.equal(e.headers['retry-after'], '2');
      }
      assert.equal(pp.delivered.length, 0);
    });
  });

  test('over TLS: the documented form (Token auth, wrapped body)', T, async () => {
    await withMock(startPushpadMock, { tls: pki().server, token: 'tok"en' }, async (pp) => {
      const post = (body, headers = {}) => request(`${pp.origin}/api/v1/projects/${pp.projectId}/notifications`, {
        headers: { authorization: 'Token token="tok\\"en"', 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      let r = await post({ notification: { body: 'Hello', title: 'Hi' }, uids: ['a', 'b'] });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual(r.json.uids, ['a', 'b']);
      assert.equal(pp.requests.at(-1).scheme, 'Token');
      assert.equal(pp.requests.at(-1).shape, 'wrapped');
      r = await post({ notification: { body: 'Hello' }, uids: ['a'] }, { authorization: 'Token token="nope"' });
      assert.equal(r.status, 401);
      r = await post({ notification: { body: 'Hello', ttl: 'soon' }, uids: ['a'] });
      assert.equal(r.status, 422);
      r = await post({ notification: { body: 'Hello' }, uids: 'a' });
      assert.equal(r.status, 422);
      r = await post({ notification: { body: 'Hello' }, uids: ['a'] }, { 'content-type': 'text/plain' });
      assert.equal(r.status, 400);
      r = await request(`${pp.origin}/api/v1/projects/${pp.projectId}`, { method: 'GET', headers: { authorization: 'Token token="tok\\"en"' } });
      assert.equal(r.status, 200);
    });
  });
});
