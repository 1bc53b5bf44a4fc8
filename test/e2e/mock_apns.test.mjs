// Proves the APNs mock (src/providers/apns/apns_mock.mjs) behaves like Apple's
// HTTP/2 provider API, by driving it with `@parse/node-apn` and a raw node:http2
// client: provider tokens signed with node:crypto, certificate auth, scripted
// reasons, GOAWAY, stream limits and h2c. Needs no Herald binary. Every test
// closes its servers and is bounded in time.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import http2 from 'node:http2';
import { describe, test } from 'node:test';
import { e2eRequire, decodeJwt, verifyEs256 } from './mock_support.mjs';
import {
  T, closeH2, connectH2, enc, h2, now, request, useTestPki,
} from './mock_clients.mjs';
import { startApnsMock } from '../../src/providers/apns/apns_mock.mjs';

const apn = e2eRequire('@parse/node-apn');
const pki = useTestPki();

function es256Jwt(header, claims, privateKeyPem) {
  const input = `${enc(header)}.${enc(claims)}`;
  const sig = cryptoSign('sha256', Buffer.from(input), { key: privateKeyPem, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

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
    const mock = await startApnsMock({ tls: pki().server, ...opts });
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
      address: '127.0.0.1', port: mock.port, ca: pki().ca.cert, requestTimeout: 3_000,
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
    const good = await pki().issueClient({ uid: TOPIC, cn: `Apple Push Services: ${TOPIC}` });
    await withApns({ requestClientCert: true, clientCa: pki().clientCa.cert }, async (mock) => {
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
      const bad = connectH2(mock.origin, { key: pki().server.key, cert: pki().server.cert });
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
