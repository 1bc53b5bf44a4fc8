// Proves the Web Push mock (src/providers/web_push/web_push_mock.mjs) behaves
// like an RFC 8030 push service with RFC 8291 encryption and RFC 8292 VAPID, by
// driving it with the npm `web-push` library and hand-signed VAPID JWTs. Needs
// no Herald binary. Every test closes its servers and is bounded in time.
import assert from 'node:assert/strict';
import { createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { describe, test } from 'node:test';
import { e2eRequire } from './mock_support.mjs';
import { T, enc, now, request, useTestPki } from './mock_clients.mjs';
import {
  makeVapidKeys, sendWithWebPushLibrary, startWebPushMock,
} from '../../src/providers/web_push/web_push_mock.mjs';

const webpush = e2eRequire('web-push');
const pki = useTestPki();

describe('web push mock', () => {
  const vapid = { subject: 'mailto:ops@example.com', ...makeVapidKeys() };

  test('web-push library delivers over TLS: plaintext, VAPID claims, RFC 8030 headers', T, async () => {
    const wp = await startWebPushMock({ tls: pki().server });
    try {
      assert.match(wp.origin, /^https:\/\/127\.0\.0\.1:\d+$/);
      const { id, subscription } = wp.newSubscription({ vapidPublicKey: vapid.publicKey });
      assert.equal(subscription.endpoint, `${wp.origin}/push/${id}`);
      assert.equal(Buffer.from(subscription.keys.p256dh, 'base64url').length, 65);
      assert.equal(Buffer.from(subscription.keys.auth, 'base64url').length, 16);

      const res = await sendWithWebPushLibrary(subscription, 'When I grow up, I want to be a watermelon', vapid, {
        ca: pki().ca.cert, TTL: 120, urgency: 'high', topic: 'upd',
      });
      assert.equal(res.statusCode, 201);
      assert.equal(res.headers.location, `${wp.origin}/message/1`);
      assert.equal(res.headers.ttl, '120');

      assert.equal(wp.received.length, 1);
      const m = wp.received[0];
      assert.equal(m.id, id);
      assert.equal(m.plaintext.toString('utf8'), 'When I grow up, I want to be a watermelon');
      assert.deepEqual(
        { ttl: m.headers.ttl, urgency: m.headers.urgency, topic: m.headers.topic, ce: m.headers['content-encoding'] },
        { ttl: 120, urgency: 'high', topic: 'upd', ce: 'aes128gcm' },
      );
      assert.deepEqual(m.vapid.header, { typ: 'JWT', alg: 'ES256' });
      assert.equal(m.vapid.claims.aud, wp.origin);
      assert.equal(m.vapid.claims.sub, 'mailto:ops@example.com');
      assert.ok(m.vapid.claims.exp > now() && m.vapid.claims.exp <= now() + 86_400);
      assert.equal(m.vapid.k, vapid.publicKey);
      assert.equal(wp.jwts.length, 1);
      assert.equal(wp.connections, 1);

      // A message without payload is allowed (no Content-Encoding needed).
      await sendWithWebPushLibrary(subscription, null, vapid, { ca: pki().ca.cert, TTL: 0 });
      assert.equal(wp.received[1].plaintext, null);
    } finally {
      await wp.close();
    }
  });

  test('scripted 410 / 429 and unsubscribe surface as WebPushError status codes', T, async () => {
    const wp = await startWebPushMock({ tls: pki().server });
    try {
      const { id, subscription } = wp.newSubscription();
      const opts = { ca: pki().ca.cert, TTL: 60 };
      wp.script(id, [{ status: 429, headers: { 'retry-after': '1' } }, { status: 500 }, { status: 413 }]);
      await assert.rejects(sendWithWebPushLibrary(subscription, 'a', vapid, opts), (e) => {
        assert.ok(e instanceof webpush.WebPushError);
        assert.equal(e.statusCode, 429);
        assert.equal(e.headers['retry-after'], '1');
        assert.equal(JSON.parse(e.body).errno, 201);
        return true;
      });
      await assert.rejects(sendWithWebPushLibrary(subscription, 'b', vapid, opts), (e) => e.statusCode === 500);
      await assert.rejects(sendWithWebPushLibrary(subscription, 'c', vapid, opts), (e) => e.statusCode === 413);
      const ok = await sendWithWebPushLibrary(subscription, 'd', vapid, opts); // queue empty: normal again
      assert.equal(ok.statusCode, 201);

      wp.script(id, { status: 410 });
      await assert.rejects(sendWithWebPushLibrary(subscription, 'e', vapid, opts), (e) => {
        assert.equal(e.statusCode, 410);
        assert.deepEqual(Object.keys(JSON.parse(e.body)).sort(), ['code', 'errno', 'error', 'message', 'more_info']);
        return true;
      });
      wp.unsubscribe(id);
      await assert.rejects(sendWithWebPushLibrary(subscription, 'f', vapid, opts), (e) => e.statusCode === 410);
      assert.deepEqual(wp.received.map((m) => m.plaintext.toString()), ['d']);
    } finally {
      await wp.close();
    }
  });

  test('RFC 8030 / 8291 validation: TTL, Urgency, Topic, unknown id, size, coding, decryption', T, async () => {
    const wp = await startWebPushMock(); // plain http
    try {
      assert.match(wp.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
      const { subscription } = wp.newSubscription();
      // A valid request built by web-push, then altered.
      const valid = (payload = 'hello', options = {}) => webpush.generateRequestDetails(subscription, payload, {
        vapidDetails: vapid, TTL: 30, ...options,
      });
      const post = (d, headers = d.headers, url = d.endpoint) => request(url, { headers, body: d.body });
      const without = (h, name) => Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== name));

      const ok = await post(valid());
      assert.equal(ok.status, 201);
      assert.equal(ok.headers.ttl, '30');

      let d = valid();
      let r = await post(d, without(d.headers, 'ttl'));
      assert.equal(r.status, 400);
      assert.deepEqual([r.json.code, r.json.errno, r.json.error], [400, 111, 'Bad Request']);

      d = valid();
      r = await post(d, { ...d.headers, TTL: '-5' });
      assert.equal(r.status, 400);
      assert.equal(r.json.errno, 112);

      d = valid();
      r = await post(d, { ...d.headers, TTL: '99999999' }); // lowered to 30 days, reported back
      assert.equal(r.status, 201);
      assert.equal(r.headers.ttl, '2592000');

      d = valid();
      r = await post(d, { ...d.headers, Urgency: 'urgent' });
      assert.equal(r.status, 400);

      d = valid();
      r = await post(d, { ...d.headers, Topic: 'x'.repeat(33) });
      assert.equal(r.status, 400);
      assert.equal(r.json.errno, 113);
      r = await post(d, { ...d.headers, Topic: 'bad topic!' });
      assert.equal(r.status, 400);

      d = valid();
      r = await post(d, d.headers, `${wp.origin}/push/unknown-subscription`);
      assert.equal(r.status, 404);
      assert.equal(r.json.errno, 102);

      r = await request(subscription.endpoint, { method: 'GET' });
      assert.equal(r.status, 405);

      d = valid('x'.repeat(3993)); // the largest plaintext that fits 4096 bytes
      assert.equal(d.body.length, 4096);
      assert.equal((await post(d)).status, 201);
      assert.equal(wp.received.at(-1).plaintext.length, 3993);
      d = valid('x'.repeat(3994));
      r = await post(d);
      assert.equal(r.status, 413);
      assert.equal(r.json.errno, 104);

      d = valid();
      r = await post(d, without(d.headers, 'content-encoding'));
      assert.equal(r.status, 400);
      r = await post(valid('hi', { contentEncoding: 'aesgcm' }));
      assert.equal(r.status, 400);

      d = valid();
      const tampered = Buffer.from(d.body);
      tampered[tampered.length - 1] ^= 0x01; // breaks the GCM tag
      r = await request(d.endpoint, { headers: d.headers, body: tampered });
      assert.equal(r.status, 400);
      assert.match(r.json.message, /Decryption failed/);

      // Encrypted for another subscription's keys: cannot be decrypted here.
      const other = wp.newSubscription().subscription;
      d = webpush.generateRequestDetails(other, 'for someone else', { vapidDetails: vapid, TTL: 30 });
      r = await request(subscription.endpoint, { headers: d.headers, body: d.body });
      assert.equal(r.status, 400);
    } finally {
      await wp.close();
    }
  });

  test('RFC 8292 VAPID: restricted subscriptions, signature, aud, exp, sub', T, async () => {
    const wp = await startWebPushMock();
    try {
      const { subscription } = wp.newSubscription({ vapidPublicKey: vapid.publicKey });
      const base = webpush.generateRequestDetails(subscription, 'x', { vapidDetails: vapid, TTL: 30 });
      const send = (authorization) => {
        const headers = Object.fromEntries(Object.entries(base.headers).filter(([k]) => k !== 'Authorization'));
        if (authorization) headers.Authorization = authorization;
        return request(subscription.endpoint, { headers, body: base.body });
      };
      const priv = createPrivateKey({
        key: {
          kty: 'EC', crv: 'P-256', d: vapid.privateKey,
          x: Buffer.from(vapid.publicKey, 'base64url').subarray(1, 33).toString('base64url'),
          y: Buffer.from(vapid.publicKey, 'base64url').subarray(33).toString('base64url'),
        },
        format: 'jwk',
      });
      const token = (claims, header = { typ: 'JWT', alg: 'ES256' }) => {
        const input = `${enc(header)}.${enc(claims)}`;
        return `${input}.${cryptoSign('sha256', Buffer.from(input), { key: priv, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
      };
      const good = { aud: wp.origin, exp: now() + 3600, sub: 'https://example.com/contact' };
      const auth = (claims, k = vapid.publicKey, header) => `vapid t=${token(claims, header)}, k=${k}`;

      assert.equal((await send(auth(good))).status, 201);
      assert.equal((await send(null)).status, 401); // restricted subscription without VAPID
      assert.equal((await send(`WebPush ${token(good)}`)).status, 401);
      const other = makeVapidKeys();
      assert.equal((await send(auth(good, other.publicKey))).status, 403); // signature does not verify with k
      assert.equal((await send(auth({ ...good, aud: 'https://push.example.net' }))).status, 403);
      assert.equal((await send(auth({ ...good, exp: now() - 1 }))).status, 403);
      assert.equal((await send(auth({ ...good, exp: now() + 86_400 + 60 }))).status, 403);
      assert.equal((await send(auth({ ...good, sub: 'ops@example.com' }))).status, 403);
      assert.equal((await send(auth(good, vapid.publicKey, { typ: 'JWT', alg: 'HS256' }))).status, 403);
      const r = await send(auth({ ...good, aud: 'https://push.example.net' }));
      assert.deepEqual([r.json.code, r.json.errno, r.json.error], [403, 109, 'Forbidden']);

      // Signed correctly, but by another key than the one the subscription is bound to.
      const { subscription: bound } = wp.newSubscription({ vapidPublicKey: other.publicKey });
      const d = webpush.generateRequestDetails(bound, 'x', { vapidDetails: vapid, TTL: 30 });
      assert.equal((await request(bound.endpoint, { headers: d.headers, body: d.body })).status, 403);
      assert.equal(wp.received.length, 1);
    } finally {
      await wp.close();
    }
  });
});
