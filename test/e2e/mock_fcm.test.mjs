// Proves the FCM mock (src/providers/fcm/fcm_mock.mjs) behaves like FCM HTTP v1
// and Google's OAuth token endpoint, by driving it with service-account JWTs
// signed with node:crypto (RS256), HTTP/1.1 token exchanges and HTTP/2 sends.
// Needs no Herald binary. Every test closes its servers and is bounded in time.
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import http2 from 'node:http2';
import { describe, test } from 'node:test';
import {
  T, closeH2, connectH2, enc, h2, now, request, useTestPki,
} from './mock_clients.mjs';
import { startFcmMock } from '../../src/providers/fcm/fcm_mock.mjs';

const pki = useTestPki();

function rs256Jwt(header, claims, privateKeyPem) {
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKeyPem).toString('base64url')}`;
}

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
    const fcm = await startFcmMock({ tls: pki().server, ...opts });
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
