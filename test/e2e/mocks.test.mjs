// Proves the loopback provider mocks (src/providers/{web_push,apns,fcm}/*_mock.mjs)
// behave like the real services, by driving them with independent clients: the
// npm `web-push` library, `@parse/node-apn`, and hand-built requests signed
// with node:crypto. Needs no Herald binary. Every test closes its servers and
// is bounded in time.
import assert from 'node:assert/strict';
import { createPrivateKey, createSign, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { e2eRequire, decodeJwt, verifyEs256 } from './mock_support.mjs';
import { makeTlsAuthority } from './tls_authority.mjs';
import {
  makeVapidKeys, sendWithWebPushLibrary, startWebPushMock,
} from '../../src/providers/web_push/web_push_mock.mjs';
import { startApnsMock } from '../../src/providers/apns/apns_mock.mjs';
import { startFcmMock } from '../../src/providers/fcm/fcm_mock.mjs';

const webpush = e2eRequire('web-push');
const apn = e2eRequire('@parse/node-apn');

const T = { timeout: 15_000 };
const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

let pki;
before(async () => { pki = await makeTlsAuthority(); });
after(() => pki?.cleanup());

/** One HTTP/1.1 request (http or https by URL; https trusts the test CA). */
function request(url, { method = 'POST', headers = {}, body, ca = pki.ca.cert } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, headers, ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** One HTTP/2 request on `session`. Rejects on a stream error (e.g. REFUSED_STREAM). */
function h2(session, headers, body) {
  return new Promise((resolve, reject) => {
    const hdrs = Object.fromEntries(Object.entries({ ':method': 'POST', ...headers }).filter(([, v]) => v !== undefined));
    const req = session.request(hdrs);
    let status;
    let resHeaders;
    const chunks = [];
    req.setTimeout(5_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.on('response', (h) => { status = h[':status']; resHeaders = h; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let json;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      resolve({ status, headers: resHeaders, text, json });
    });
    req.on('error', reject);
    if (req.writable) req.end(body); // GET/HEAD streams are already half-closed
  });
}

function connectH2(origin, opts = {}) {
  const session = http2.connect(origin, { ca: pki.ca.cert, ...opts });
  session.on('error', () => { /* surfaced through the requests */ });
  return session;
}

function closeH2(session) {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) { resolve(); return; }
    const timer = setTimeout(() => { session.destroy(); resolve(); }, 1_000);
    session.close(() => { clearTimeout(timer); resolve(); });
  });
}

function es256Jwt(header, claims, privateKeyPem) {
  const input = `${enc(header)}.${enc(claims)}`;
  const sig = cryptoSign('sha256', Buffer.from(input), { key: privateKeyPem, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

function rs256Jwt(header, claims, privateKeyPem) {
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKeyPem).toString('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

// ===================================================================== Web Push

describe('web push mock', () => {
  const vapid = { subject: 'mailto:ops@example.com', ...makeVapidKeys() };

  test('web-push library delivers over TLS: plaintext, VAPID claims, RFC 8030 headers', T, async () => {
    const wp = await startWebPushMock({ tls: pki.server });
    try {
      assert.match(wp.origin, /^https:\/\/127\.0\.0\.1:\d+$/);
      const { id, subscription } = wp.newSubscription({ vapidPublicKey: vapid.publicKey });
      assert.equal(subscription.endpoint, `${wp.origin}/push/${id}`);
      assert.equal(Buffer.from(subscription.keys.p256dh, 'base64url').length, 65);
      assert.equal(Buffer.from(subscription.keys.auth, 'base64url').length, 16);

      const res = await sendWithWebPushLibrary(subscription, 'When I grow up, I want to be a watermelon', vapid, {
        ca: pki.ca.cert, TTL: 120, urgency: 'high', topic: 'upd',
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
      await sendWithWebPushLibrary(subscription, null, vapid, { ca: pki.ca.cert, TTL: 0 });
      assert.equal(wp.received[1].plaintext, null);
    } finally {
      await wp.close();
    }
  });

  test('scripted 410 / 429 and unsubscribe surface as WebPushError status codes', T, async () => {
    const wp = await startWebPushMock({ tls: pki.server });
    try {
      const { id, subscription } = wp.newSubscription();
      const opts = { ca: pki.ca.cert, TTL: 60 };
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

// ======================================================================== APNs

describe('apns mock', () => {
  const TEAM = 'TEAM123456';
  const KID = 'KEY1234567';
  const TOPIC = 'com.example.app';
  const p8 = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const device = (n) => n.toString(16).padStart(2, '0').repeat(32);
  const bearer = (claims = { iss: TEAM, iat: now() }, header = { alg: 'ES256', kid: KID }, key = p8.privateKey) => `bearer ${es256Jwt(header, claims, key)}`;
  const aps = JSON.stringify({ aps: { alert: { title: 'T', body: 'B' } } });

  async function withApns(opts, fn) {
    const mock = await startApnsMock({ tls: pki.server, ...opts });
    mock.addKey({ keyId: KID, teamId: TEAM, publicKeyPem: p8.publicKey });
    try {
      await fn(mock);
    } finally {
      await mock.close();
    }
  }

  function provider(mock) {
    return new apn.Provider({
      token: { key: p8.privateKey, keyId: KID, teamId: TEAM },
      address: '127.0.0.1', port: mock.port, ca: pki.ca.cert, requestTimeout: 3_000,
    });
  }

  function note() {
    const n = new apn.Notification();
    n.alert = { title: 'Hello', body: 'World' };
    n.badge = 3;
    n.sound = 'default';
    n.threadId = 'th';
    n.topic = TOPIC;
    n.pushType = 'alert';
    n.priority = 10;
    n.collapseId = 'c1';
    n.expiry = now() + 3600;
    n.payload = { orderId: 'A-1' };
    return n;
  }

  test('@parse/node-apn over TLS: headers, payload, and a provider token that verifies', T, async () => {
    await withApns({}, async (mock) => {
      const p = provider(mock);
      try {
        const n = note();
        const result = await p.send(n, device(1));
        assert.deepEqual(result.failed, []);
        assert.equal(result.sent.length, 1);
        assert.equal(result.sent[0].device, device(1));

        assert.equal(mock.received.length, 1);
        const r = mock.received[0];
        assert.equal(result.sent[0]['apns-id'], r.apnsId);
        assert.equal(r.token, device(1));
        assert.equal(r.headers[':path'], `/3/device/${device(1)}`);
        assert.equal(r.headers['apns-topic'], TOPIC);
        assert.equal(r.headers['apns-push-type'], 'alert');
        assert.equal(r.headers['apns-priority'], '10');
        assert.equal(r.headers['apns-collapse-id'], 'c1');
        assert.equal(r.headers['apns-expiration'], String(n.expiry));
        assert.deepEqual(r.payload, {
          orderId: 'A-1',
          aps: { alert: { title: 'Hello', body: 'World' }, badge: 3, sound: 'default', 'thread-id': 'th' },
        });
        assert.deepEqual({ kid: r.jwt.kid, iss: r.jwt.iss }, { kid: KID, iss: TEAM });
        assert.ok(Math.abs(r.jwt.iat - now()) <= 5);

        // Verify the library's JWT ourselves: ES256, 64-byte signature, registered key.
        const jwt = decodeJwt(r.headers.authorization.replace(/^bearer /, ''));
        assert.equal(jwt.header.alg, 'ES256');
        assert.equal(jwt.signature.length, 64);
        assert.ok(verifyEs256(p8.publicKey, jwt.signingInput, jwt.signature));
        assert.equal(mock.jwts.length, 1);
        assert.equal(mock.connections, 1);
      } finally {
        await p.shutdown();
      }
    });
  });

  test('scripted answers surface in node-apn failed[]: Unregistered (+timestamp), BadDeviceToken, ExpiredProviderToken once', T, async () => {
    await withApns({}, async (mock) => {
      const p = provider(mock);
      try {
        mock.setToken(device(2), { reason: 'Unregistered', timestamp: 1_454_948_015_990 });
        mock.setToken(device(3), 'BadDeviceToken');
        const result = await p.send(note(), [device(1), device(2), device(3)]);
        assert.deepEqual(result.sent.map((s) => s.device), [device(1)]);
        const failed = Object.fromEntries(result.failed.map((f) => [f.device, f]));
        assert.equal(failed[device(2)].status, 410);
        assert.deepEqual(failed[device(2)].response, { reason: 'Unregistered', timestamp: 1_454_948_015_990 });
        assert.equal(failed[device(3)].status, 400);
        assert.deepEqual(failed[device(3)].response, { reason: 'BadDeviceToken' });
        assert.ok(failed[device(2)]['apns-id'], 'error replies carry apns-id');

        // ExpiredProviderToken once: node-apn makes a new token and retries.
        mock.setToken(device(4), { reason: 'ExpiredProviderToken', times: 1 });
        const again = await p.send(note(), device(4));
        assert.equal(again.sent.length, 1);
        assert.equal(mock.forToken(device(4)).length, 1);
        assert.equal(mock.jwts.length, 2, 'a regenerated token was used for the retry');

        // A scripted sequence, then normal again.
        mock.setToken(device(5), ['TooManyRequests', { status: 503, reason: 'ServiceUnavailable' }]);
        const s1 = await p.send(note(), device(5)); // node-apn retries 429/503 itself
        assert.equal(s1.sent.length, 1);
        const seen = mock.requests.filter((q) => q.token === device(5)).map((q) => q.status);
        assert.deepEqual(seen, [429, 503, 200]);
      } finally {
        await p.shutdown();
      }
    });
  });

  test('request validation as Apple documents it (raw HTTP/2 client)', T, async () => {
    await withApns({ allowedTopics: [TOPIC] }, async (mock) => {
      const s = connectH2(mock.origin);
      try {
        const post = (headers, body = aps) => h2(s, { ':path': `/3/device/${device(9)}`, authorization: bearer(), 'apns-topic': TOPIC, ...headers }, body);
        const reason = async (headers, body) => {
          const r = await post(headers, body);
          assert.ok(r.headers['apns-id'], 'every reply carries apns-id');
          return `${r.status} ${r.json?.reason ?? ''}`.trim();
        };
        assert.equal(await reason({}), '200');
        const id = '6a1f3b9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
        assert.equal((await post({ 'apns-id': id })).headers['apns-id'], id);

        assert.equal(await reason({ ':method': 'GET' }, ''), '405 MethodNotAllowed');
        assert.equal(await reason({ ':path': '/3/devices/abc' }), '404 BadPath');
        assert.equal(await reason({ ':path': '/3/device/' }), '400 MissingDeviceToken');
        assert.equal(await reason({ ':path': '/3/device/not-hex' }), '400 BadDeviceToken');
        assert.equal(await reason({ authorization: undefined }), '403 MissingProviderToken');
        assert.equal(await reason({ authorization: 'bearer abc.def' }), '403 InvalidProviderToken');
        assert.equal(await reason({ authorization: bearer(undefined, { alg: 'ES256', kid: 'UNKNOWN123' }) }), '403 InvalidProviderToken');
        assert.equal(await reason({ authorization: bearer({ iss: 'OTHERTEAM1', iat: now() }) }), '403 InvalidProviderToken');
        const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
        assert.equal(await reason({ authorization: bearer(undefined, undefined, stranger) }), '403 InvalidProviderToken');
        assert.equal(await reason({ authorization: bearer({ iss: TEAM, iat: now() - 3700 }) }), '403 ExpiredProviderToken');
        assert.equal(await reason({ 'apns-topic': undefined }), '400 MissingTopic');
        assert.equal(await reason({ 'apns-topic': 'com.other.app' }), '400 TopicDisallowed');
        assert.equal(await reason({ 'apns-topic': `${TOPIC}.voip`, 'apns-push-type': 'voip' }), '200');
        assert.equal(await reason({ 'apns-push-type': 'banner' }), '400 InvalidPushType');
        assert.equal(await reason({ 'apns-priority': '7' }), '400 BadPriority');
        assert.equal(await reason({ 'apns-expiration': 'tomorrow' }), '400 BadExpirationDate');
        assert.equal(await reason({ 'apns-collapse-id': 'x'.repeat(65) }), '400 BadCollapseId');
        assert.equal(await reason({ 'apns-collapse-id': 'x'.repeat(64) }), '200');
        assert.equal(await reason({ 'apns-id': 'not-a-uuid' }), '400 BadMessageId');
        assert.equal(await reason({ 'apns-id': id.toUpperCase() }), '400 BadMessageId');
        assert.equal(await reason({}, ''), '400 PayloadEmpty');
        const big = (n) => JSON.stringify({ aps: { alert: 'x' }, pad: 'y'.repeat(n - 30) });
        assert.equal(big(4096).length, 4096);
        assert.equal(await reason({}, big(4096)), '200');
        assert.equal(await reason({}, big(4097)), '413 PayloadTooLarge');
        assert.equal(await reason({ 'apns-push-type': 'voip', 'apns-topic': `${TOPIC}.voip` }, big(5120)), '200');
        assert.equal(await reason({ 'apns-push-type': 'voip', 'apns-topic': `${TOPIC}.voip` }, big(5121)), '413 PayloadTooLarge');
        assert.equal(await reason({}, 'not json'), '400 BadPayload');
        assert.equal(await reason({}, '{"alert":"no aps"}'), '400 BadPayload');

        mock.revokeKey(KID);
        assert.equal(await reason({}), '403 InvalidProviderToken');
      } finally {
        await closeH2(s);
      }
    });
  });

  test('a connection is bound to one team: a second team gets UnrelatedKeyIdInToken', T, async () => {
    await withApns({}, async (mock) => {
      const other = generateKeyPairSync('ec', {
        namedCurve: 'prime256v1',
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      mock.addKey({ keyId: 'OTHERKEY01', teamId: 'OTHERTEAM1', publicKeyPem: other.publicKey });
      const otherAuth = bearer({ iss: 'OTHERTEAM1', iat: now() }, { alg: 'ES256', kid: 'OTHERKEY01' }, other.privateKey);
      const s1 = connectH2(mock.origin);
      const s2 = connectH2(mock.origin);
      try {
        const req = (s, authorization) => h2(s, { ':path': `/3/device/${device(7)}`, authorization, 'apns-topic': TOPIC }, aps);
        assert.equal((await req(s1, bearer())).status, 200);
        const r = await req(s1, otherAuth);
        assert.deepEqual([r.status, r.json.reason], [403, 'UnrelatedKeyIdInToken']);
        assert.equal((await req(s2, otherAuth)).status, 200); // fine on its own connection
      } finally {
        await closeH2(s1);
        await closeH2(s2);
      }
    });
  });

  test('goawayAfter(n): GOAWAY with a JSON reason, later streams refused, a new connection works', T, async () => {
    await withApns({}, async (mock) => {
      const s1 = connectH2(mock.origin);
      try {
        const req = (s) => h2(s, { ':path': `/3/device/${device(8)}`, authorization: bearer(), 'apns-topic': TOPIC }, aps);
        assert.equal((await req(s1)).status, 200); // the session is up
        const goaway = new Promise((resolve) => s1.once('goaway', (code, lastStreamId, data) => resolve({ code, lastStreamId, data })));
        mock.goawayAfter(2, { reason: 'Shutdown' });
        const results = await Promise.allSettled([req(s1), req(s1), req(s1), req(s1)]);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected']);
        assert.deepEqual(results.slice(0, 2).map((r) => r.value.status), [200, 200]);
        assert.match(results[2].reason.message, /REFUSED_STREAM|GOAWAY/);
        const g = await goaway;
        assert.equal(g.code, 0);
        assert.deepEqual(JSON.parse(g.data.toString()), { reason: 'Shutdown' });
        assert.equal(g.lastStreamId, 5); // streams 1, 3, 5 answered; 7 and 9 not
        assert.equal(mock.received.length, 3);

        const s2 = connectH2(mock.origin);
        try {
          assert.equal((await req(s2)).status, 200);
          assert.equal((await req(s2)).status, 200); // one-shot: this connection stays
        } finally {
          await closeH2(s2);
        }
        assert.equal(mock.connections, 2);
      } finally {
        await closeH2(s1);
      }
    });
  });

  test('SETTINGS_MAX_CONCURRENT_STREAMS: 1 until a valid provider token, then maxConcurrentStreams', T, async () => {
    await withApns({ oneStreamUntilValidToken: true, maxConcurrentStreams: 500 }, async (mock) => {
      const s = connectH2(mock.origin);
      try {
        const first = await new Promise((resolve) => s.once('remoteSettings', resolve));
        assert.equal(first.maxConcurrentStreams, 1);
        const widened = new Promise((resolve) => s.once('remoteSettings', resolve));
        const r = await h2(s, { ':path': `/3/device/${device(6)}`, authorization: bearer(), 'apns-topic': TOPIC }, aps);
        assert.equal(r.status, 200);
        assert.equal((await widened).maxConcurrentStreams, 500);
      } finally {
        await closeH2(s);
      }
    });
  });

  test('h2c mode, goawayAfter(n, {every: true}) and dropConnections()', T, async () => {
    const mock = await startApnsMock(); // no tls: HTTP/2 with prior knowledge
    mock.addKey({ keyId: KID, teamId: TEAM, publicKeyPem: p8.publicKey });
    const sessions = [];
    try {
      assert.match(mock.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
      const open = () => { const s = http2.connect(mock.origin); s.on('error', () => {}); sessions.push(s); return s; };
      const req = (s) => h2(s, { ':path': `/3/device/${device(5)}`, authorization: bearer(), 'apns-topic': TOPIC }, aps);
      mock.goawayAfter(1, { every: true, reason: 'IdleTimeout' });
      for (let i = 0; i < 3; i++) {
        const s = open();
        const gone = new Promise((resolve) => s.once('goaway', (_c, _l, data) => resolve(JSON.parse(data.toString()))));
        assert.equal((await req(s)).status, 200);
        assert.deepEqual(await gone, { reason: 'IdleTimeout' });
      }
      assert.equal(mock.connections, 3);
      mock.goawayAfter(null);
      const s = open();
      assert.equal((await req(s)).status, 200);
      const closed = new Promise((resolve) => s.once('close', resolve));
      mock.dropConnections();
      await closed;
      assert.equal(mock.openConnections, 0);
    } finally {
      for (const s of sessions) await closeH2(s);
      await mock.close();
    }
  });

  test('certificate auth: a client-CA certificate (.p12) needs no token; others are refused; no HTTP/1.1', T, async () => {
    const good = await pki.issueClient({ uid: TOPIC, cn: `Apple Push Services: ${TOPIC}` });
    await withApns({ requestClientCert: true, clientCa: pki.clientCa.cert }, async (mock) => {
      const s = connectH2(mock.origin, { pfx: good.p12, passphrase: good.password });
      try {
        // Single-topic certificate: apns-topic may be left out.
        const r = await h2(s, { ':path': `/3/device/${device(1)}` }, aps);
        assert.equal(r.status, 200);
        assert.equal(mock.received[0].clientSubject.UID, TOPIC);
        assert.equal(mock.received[0].jwt, null);
        assert.equal(mock.received[0].topic, TOPIC);
        const wrong = await h2(s, { ':path': `/3/device/${device(1)}`, 'apns-topic': 'com.other.app' }, aps);
        assert.deepEqual([wrong.status, wrong.json.reason], [400, 'TopicDisallowed']);
      } finally {
        await closeH2(s);
      }

      // A certificate from another CA (here: a server cert signed by the server CA).
      const bad = connectH2(mock.origin, { key: pki.server.key, cert: pki.server.cert });
      try {
        const r = await h2(bad, { ':path': `/3/device/${device(1)}`, 'apns-topic': TOPIC }, aps);
        assert.deepEqual([r.status, r.json.reason], [403, 'BadCertificate']);
      } finally {
        await closeH2(bad);
      }

      // No certificate and no token.
      const none = connectH2(mock.origin);
      try {
        const r = await h2(none, { ':path': `/3/device/${device(1)}`, 'apns-topic': TOPIC }, aps);
        assert.deepEqual([r.status, r.json.reason], [403, 'MissingProviderToken']);
      } finally {
        await closeH2(none);
      }

      // HTTP/1.1 over TLS is not served (ALPN h2 only).
      await assert.rejects(request(`${mock.origin}/3/device/${device(1)}`, { body: aps }));
    });
  });
});

// ========================================================================= FCM

describe('fcm mock', () => {
  const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
  const rsa = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });

  function assertion(sa, overrides = {}, header = { alg: 'RS256', typ: 'JWT', kid: sa.privateKeyId }, key = sa.account.private_key) {
    const iat = now();
    return rs256Jwt(header, { iss: sa.clientEmail, scope: SCOPE, aud: sa.account.token_uri, iat, exp: iat + 3600, ...overrides }, key);
  }

  function exchange(fcm, jwt, grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    return request(fcm.tokenUri, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: grantType, assertion: jwt }).toString(),
    });
  }

  async function withFcm(opts, fn) {
    const fcm = await startFcmMock({ tls: pki.server, ...opts });
    const sa = fcm.makeServiceAccount({ projectId: 'demo-proj', privateKeyPem: rsa.privateKey });
    const sessions = [];
    const connect = () => { const s = connectH2(fcm.origin); sessions.push(s); return s; };
    try {
      await fn(fcm, sa, connect);
    } finally {
      for (const s of sessions) await closeH2(s);
      await fcm.close();
    }
  }

  const sendPath = (project = 'demo-proj') => `/v1/projects/${project}/messages:send`;
  const send = (s, accessToken, body, project) => h2(s, {
    ':path': sendPath(project), 'content-type': 'application/json', ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
  }, JSON.stringify(body));

  test('service account JSON, token exchange over HTTP/1.1 (RS256 by node:crypto), send over HTTP/2', T, async () => {
    await withFcm({}, async (fcm, sa, connect) => {
      const acct = JSON.parse(sa.json);
      assert.deepEqual(Object.keys(acct), ['type', 'project_id', 'private_key_id', 'private_key', 'client_email',
        'client_id', 'auth_uri', 'token_uri', 'auth_provider_x509_cert_url', 'client_x509_cert_url', 'universe_domain']);
      assert.equal(acct.type, 'service_account');
      assert.equal(acct.token_uri, `${fcm.origin}/token`);
      assert.match(acct.private_key, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.match(acct.client_email, /@demo-proj\.iam\.gserviceaccount\.com$/);
      assert.match(acct.private_key_id, /^[0-9a-f]{40}$/);

      const tok = await exchange(fcm, assertion(sa));
      assert.equal(tok.status, 200, tok.text);
      assert.deepEqual(Object.keys(tok.json).sort(), ['access_token', 'expires_in', 'token_type']);
      assert.equal(tok.json.token_type, 'Bearer');
      assert.equal(tok.json.expires_in, 3599);
      assert.equal(fcm.exchanges, 1);
      assert.equal(fcm.exchangeLog[0].httpVersion, '1.1');

      const s = connect();
      const message = {
        token: 'tok-1',
        notification: { title: 'T', body: 'B', image: 'https://example.com/i.png' },
        data: { k: 'v' },
        android: { priority: 'high', ttl: '3600s', collapse_key: 'c1', notification: { sound: 'default', click_action: 'OPEN', channel_id: 'ch', color: '#ff0000' } },
        apns: { headers: { 'apns-priority': '10' }, payload: { aps: { badge: 3, 'mutable-content': 1 } } },
        webpush: { headers: { TTL: '3600', Urgency: 'high' }, notification: { icon: 'https://example.com/icon.png' }, fcmOptions: { link: 'https://example.com/x' } },
        fcmOptions: { analyticsLabel: 'l1' },
      };
      const r = await send(s, tok.json.access_token, { message });
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.name, /^projects\/demo-proj\/messages\/.+/);
      assert.equal(fcm.received.length, 1);
      const got = fcm.received[0];
      assert.deepEqual(got.message, message);
      assert.equal(got.token, 'tok-1');
      assert.equal(got.validateOnly, false);
      assert.equal(got.accessToken, tok.json.access_token);
      assert.equal(got.httpVersion, '2.0');
      assert.equal(got.name, r.json.name);

      // validate_only (either spelling): same answer, nothing delivered.
      const v1 = await send(s, tok.json.access_token, { message: { token: 'tok-1' }, validate_only: true });
      const v2 = await send(s, tok.json.access_token, { message: { token: 'tok-1' }, validateOnly: true });
      assert.deepEqual([v1.status, v2.status], [200, 200]);
      assert.equal(fcm.delivered.length, 1);
      assert.equal(fcm.received.length, 3);
      assert.ok(fcm.connections >= 2); // one for the token exchange, one HTTP/2 session
      assert.equal(fcm.exchanges, 1);
    });
  });

  test('scripted token states give FCM\'s google.rpc.Status bodies', T, async () => {
    await withFcm({}, async (fcm, sa, connect) => {
      const at = (await exchange(fcm, assertion(sa))).json.access_token;
      const s = connect();
      fcm.setToken('dead', 'UNREGISTERED');
      let r = await send(s, at, { message: { token: 'dead', notification: { title: 'x' } } });
      assert.equal(r.status, 404);
      assert.deepEqual(r.json, {
        error: {
          code: 404,
          message: 'Requested entity was not found.',
          status: 'NOT_FOUND',
          details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }],
        },
      });

      fcm.setToken('bad', 'INVALID');
      r = await send(s, at, { message: { token: 'bad' } });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.equal(r.json.error.message, 'The registration token is not a valid FCM registration token');
      assert.deepEqual(r.json.error.details[1].fieldViolations, [{ field: 'message.token', description: 'The registration token is not a valid FCM registration token' }]);

      const cases = [
        ['SENDER_ID_MISMATCH', 403, 'PERMISSION_DENIED'],
        ['QUOTA_EXCEEDED', 429, 'RESOURCE_EXHAUSTED'],
        ['UNAVAILABLE', 503, 'UNAVAILABLE'],
        ['INTERNAL', 500, 'INTERNAL'],
        ['THIRD_PARTY_AUTH_ERROR', 401, 'UNAUTHENTICATED'],
      ];
      for (const [state, status, rpc] of cases) {
        fcm.setToken(`t-${state}`, { state, times: 1 });
        r = await send(s, at, { message: { token: `t-${state}` } });
        assert.equal(r.status, status, state);
        assert.equal(r.json.error.status, rpc);
        assert.equal(r.json.error.details[0].errorCode, state);
        r = await send(s, at, { message: { token: `t-${state}` } }); // times: 1 -> normal again
        assert.equal(r.status, 200, state);
      }
      fcm.setToken('slow', [{ state: 'QUOTA_EXCEEDED', retryAfter: 7 }, { state: 'UNAVAILABLE', retryAfter: 2 }]);
      r = await send(s, at, { message: { token: 'slow' } });
      assert.deepEqual([r.status, r.headers['retry-after']], [429, '7']);
      r = await send(s, at, { message: { token: 'slow' } });
      assert.deepEqual([r.status, r.headers['retry-after']], [503, '2']);
      assert.equal((await send(s, at, { message: { token: 'slow' } })).status, 200);

      // Scripts apply to validate_only too (dry runs reveal dead tokens).
      r = await send(s, at, { message: { token: 'dead' }, validate_only: true });
      assert.equal(r.status, 404);
    });
  });

  test('expired access tokens: 401 UNAUTHENTICATED without FcmError; one new exchange recovers', T, async () => {
    await withFcm({}, async (fcm, sa, connect) => {
      const at1 = (await exchange(fcm, assertion(sa))).json.access_token;
      const s = connect();
      assert.equal((await send(s, at1, { message: { token: 'a' } })).status, 200);
      fcm.expireAccessTokens();
      const r = await send(s, at1, { message: { token: 'a' } });
      assert.equal(r.status, 401);
      assert.equal(r.json.error.status, 'UNAUTHENTICATED');
      assert.ok(!r.json.error.details.some((d) => d['@type'].endsWith('FcmError')));
      assert.match(r.headers['www-authenticate'], /invalid_token/);

      const at2 = (await exchange(fcm, assertion(sa))).json.access_token;
      assert.notEqual(at2, at1);
      assert.equal((await send(s, at2, { message: { token: 'a' } })).status, 200);
      assert.equal(fcm.exchanges, 2);

      const missing = await send(s, null, { message: { token: 'a' } });
      assert.equal(missing.status, 401);
      assert.match(missing.json.error.message, /missing required authentication credential/);
      assert.equal((await send(s, 'ya29.forged', { message: { token: 'a' } })).status, 401);
      const other = await send(s, at2, { message: { token: 'a' } }, 'someone-elses-project');
      assert.deepEqual([other.status, other.json.error.status], [403, 'PERMISSION_DENIED']);
      assert.equal((await send(s, at2, { message: { token: 'a' } }, sa.projectNumber)).status, 200);

      // Revoked account: new exchanges fail and outstanding tokens stop working.
      fcm.revokeAccount(sa.clientEmail);
      assert.equal((await send(s, at2, { message: { token: 'a' } })).status, 401);
      const denied = await exchange(fcm, assertion(sa));
      assert.deepEqual([denied.status, denied.json.error], [400, 'invalid_grant']);
    });
  });

  test('token endpoint rejects bad assertions as Google does', T, async () => {
    await withFcm({ tokenLifetimeSeconds: 120 }, async (fcm, sa) => {
      const grant = async (jwt, grantType) => {
        const r = await exchange(fcm, jwt, grantType);
        return r.status === 200 ? `200 ${r.json.expires_in}` : `${r.status} ${r.json.error}`;
      };
      assert.equal(await grant(assertion(sa)), '200 120');
      assert.equal(await grant(assertion(sa, {}, { alg: 'RS256' })), '200 120'); // kid is optional
      const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      assert.equal(await grant(assertion(sa, {}, undefined, stranger)), '400 invalid_grant');
      assert.equal(await grant(assertion(sa, { aud: 'https://oauth2.googleapis.com/token' })), '400 invalid_grant');
      assert.equal(await grant(assertion(sa, { exp: now() + 7200 })), '400 invalid_grant');
      assert.equal(await grant(assertion(sa, { iat: now() + 600, exp: now() + 1200 })), '400 invalid_grant');
      assert.equal(await grant(assertion(sa, { iat: Date.now(), exp: Date.now() + 3600 })), '400 invalid_grant'); // ms, not s
      assert.equal(await grant(assertion(sa, { iss: 'nobody@demo-proj.iam.gserviceaccount.com' })), '400 invalid_grant');
      assert.equal(await grant(assertion(sa, { scope: undefined })), '400 invalid_scope');
      assert.equal(await grant('not.a.jwt'), '400 invalid_grant');
      assert.equal(await grant(assertion(sa), 'client_credentials'), '400 unsupported_grant_type');
      const json = await request(fcm.tokenUri, { headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.deepEqual([json.status, json.json.error], [400, 'invalid_request']);

      // A token without an FCM scope is issued, but FCM refuses it.
      const narrow = await exchange(fcm, assertion(sa, { scope: 'https://www.googleapis.com/auth/userinfo.email' }));
      assert.equal(narrow.status, 200);
      const r = await request(`${fcm.origin}${sendPath()}`, {
        headers: { authorization: `Bearer ${narrow.json.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: { token: 'a' } }),
      });
      assert.equal(r.status, 403);
      assert.equal(r.json.error.details[0].reason, 'ACCESS_TOKEN_SCOPE_INSUFFICIENT');
      assert.equal(fcm.exchanges, 13);
    });
  });

  test('message validation: targets, types, Duration, unknown fields, spellings, size', T, async () => {
    await withFcm({}, async (fcm, sa, connect) => {
      const at = (await exchange(fcm, assertion(sa))).json.access_token;
      const s = connect();
      const check = async (message, extra = {}) => {
        const r = await send(s, at, { message, ...extra });
        return r.status === 200 ? '200' : `${r.status} ${r.json.error.details.find((d) => d.fieldViolations)?.fieldViolations[0].field}`;
      };
      assert.equal(await check({ notification: { title: 'no target' } }), '400 message');
      assert.equal(await check({ token: 'a', topic: 'b' }), '400 message');
      assert.equal(await check({ topic: 'news' }), '200');
      assert.equal(await check({ topic: 'bad topic' }), '400 message.topic');
      assert.equal(await check({ condition: "'a' in topics && 'b' in topics" }), '200');
      assert.equal(await check({ token: 'has spaces' }), '400 message.token');
      assert.equal(await check({ token: 'a', data: { n: 1 } }), '400 message.data[0].value');
      assert.equal(await check({ token: 'a', data: { ok: 'x', nested: { a: 'b' } } }), '400 message.data[1].value');
      assert.equal(await check({ token: 'a', data: { from: 'x' } }), '400 message.data');
      assert.equal(await check({ token: 'a', android: { ttl: 3600 } }), '400 message.android.ttl');
      assert.equal(await check({ token: 'a', android: { ttl: '3600' } }), '400 message.android.ttl');
      assert.equal(await check({ token: 'a', android: { ttl: '3.5s' } }), '200');
      assert.equal(await check({ token: 'a', android: { priority: 'urgent' } }), '400 message.android.priority');
      assert.equal(await check({ token: 'a', android: { notification: { clickAction: 'X', channel_id: 'c' } } }), '200');
      assert.equal(await check({ token: 'a', android: { click_action: 'X' } }), '400 message.android');
      assert.equal(await check({ token: 'a', android: { collapseKey: 'c', restrictedPackageName: 'p' } }), '200');
      assert.equal(await check({ token: 'a', apns: { headers: { 'apns-priority': 10 } } }), '400 message.apns.headers[0].value');
      assert.equal(await check({ token: 'a', webpush: { fcm_options: { link: 'http://x' } } }), '400 message.webpush.fcm_options.link');
      assert.equal(await check({ token: 'a' }, { validate_only: 'yes' }), '400 validate_only');
      assert.equal(await check({ token: 'a' }, { dryRun: true }), '400 undefined'); // unknown top-level field: no path
      assert.equal(await check({ token: 'a', data: { k: 'x'.repeat(4095) } }), '200'); // 1 + 4095 bytes
      assert.equal(await check({ token: 'a', data: { k: 'x'.repeat(4096) } }), '400 message');
      assert.equal(await check({ topic: 'news', data: { k: 'x'.repeat(2048) } }), '400 message');

      const unknown = await send(s, at, { message: { token: 'a', notification: { titel: 'x' } } });
      assert.equal(unknown.json.error.message, 'Invalid JSON payload received. Unknown name "titel" at \'message.notification\': Cannot find field.');
      const notJson = await h2(s, { ':path': sendPath(), authorization: `Bearer ${at}` }, '{"message":');
      assert.deepEqual([notJson.status, notJson.json.error.status], [400, 'INVALID_ARGUMENT']);
      const wrongPath = await h2(s, { ':path': '/v1/projects/demo-proj/messages:sendAll', authorization: `Bearer ${at}` }, '{}');
      assert.equal(wrongPath.status, 404);
      assert.equal(fcm.delivered.length, 6);
    });
  });

  test('plain mode serves HTTP/1.1 and h2c on one port (h2c: \'auto\')', T, async () => {
    const fcm = await startFcmMock();
    try {
      const sa = fcm.makeServiceAccount({ projectId: 'p2', privateKeyPem: rsa.privateKey });
      assert.match(sa.account.token_uri, /^http:\/\/127\.0\.0\.1:\d+\/token$/);
      const tok = await exchange(fcm, assertion(sa));
      assert.equal(tok.status, 200);
      const s = http2.connect(fcm.origin);
      s.on('error', () => {});
      try {
        const r = await send(s, tok.json.access_token, { message: { token: 'a' } }, 'p2');
        assert.equal(r.status, 200);
      } finally {
        await closeH2(s);
      }
      const h1 = await request(`${fcm.origin}${sendPath('p2')}`, {
        headers: { authorization: `Bearer ${tok.json.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: { token: 'b' } }),
      });
      assert.equal(h1.status, 200);
      assert.deepEqual(fcm.received.map((m) => m.httpVersion), ['2.0', '1.1']);
      assert.equal(fcm.connections, 3);
    } finally {
      await fcm.close();
    }
  });

  test('plain mode h2c: true serves only HTTP/2, h2c: false only HTTP/1.1', T, async () => {
    const h2only = await startFcmMock({ h2c: true });
    const h1only = await startFcmMock({ h2c: false });
    try {
      for (const fcm of [h2only, h1only]) fcm.makeServiceAccount({ projectId: 'p3', privateKeyPem: rsa.privateKey });
      const s = http2.connect(h2only.origin);
      s.on('error', () => {});
      try {
        const r = await h2(s, { ':path': '/token', 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=x');
        assert.deepEqual([r.status, r.json.error], [400, 'unsupported_grant_type']);
      } finally {
        await closeH2(s);
      }
      await assert.rejects(request(`${h2only.origin}/token`, { body: 'x' }));
      const r1 = await request(`${h1only.origin}/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=x' });
      assert.equal(r1.status, 400);
    } finally {
      await h2only.close();
      await h1only.close();
    }
  });
});
