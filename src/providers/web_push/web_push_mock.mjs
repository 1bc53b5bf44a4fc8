// A loopback Web Push service (RFC 8030 push resource, RFC 8291 aes128gcm
// payloads, RFC 8292 VAPID) for Herald's end-to-end tests.
//
//   const wp = await startWebPushMock({tls: pki.server});   // or {} for plain http
//   const {id, subscription} = wp.newSubscription({vapidPublicKey});
//   ... Herald (or the npm web-push library) POSTs to subscription.endpoint ...
//   wp.received[0].plaintext  -> the decrypted payload
//   await wp.close();
//
// It acts as a browser vendor's push service would: POST /push/<id> only, TTL
// required, Urgency and Topic checked, aes128gcm bodies decrypted (with the
// independent npm package http_ece, never with Herald's code) using the
// subscription's UA private key and auth secret, VAPID JWTs verified (ES256
// with k, aud = this origin, exp in the future and at most 24 h ahead, sub
// mailto:/https:). Errors carry Mozilla autopush's JSON body
// {code, errno, error, message, more_info}. Success is 201 with Location and TTL.
//
// Pointing the npm `web-push` library (3.6.7) at the mock needs no endpoint
// setting: the endpoint is per subscription. Over TLS give it an https.Agent
// that trusts the test CA; see sendWithWebPushLibrary() below.

import { createECDH, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import {
  b64url, closeServer, connectionTracker, decodeJwt, e2eRequire, fromB64url,
  listenLoopback, nowSeconds, p256PublicKeyFromRaw, readBody, verifyEs256,
} from '../../../test/e2e/mock_support.mjs';

const ece = e2eRequire('http_ece');

const MAX_TTL = 2_592_000; // autopush's ceiling (30 days); larger TTLs are lowered
const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
const MORE_INFO = 'http://autopush.readthedocs.io/en/latest/http.html#error-codes';
const REASON = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  410: 'Gone', 413: 'Payload Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable',
};
// autopush errno per status for scripted replies that give none.
const DEFAULT_ERRNO = { 400: 999, 401: 109, 403: 109, 404: 102, 410: 106, 413: 104, 429: 201, 500: 999, 502: 900, 503: 201 };

/** A VAPID application-server key pair: {publicKey (65-byte point), privateKey (32 bytes)}, base64url. */
export function makeVapidKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { publicKey: b64url(ecdh.getPublicKey()), privateKey: b64url(ecdh.getPrivateKey()) };
}

/**
 * Starts the mock on 127.0.0.1.
 *   tls:      {key, cert} PEM for https, or undefined for plain http
 *   h2:       over TLS, offer HTTP/2 by ALPN as the big push services do (HTTP/1.1 too);
 *             default true
 *   port:     0 (default) = any free port
 *   maxBody:  largest accepted body in bytes (default 4096, RFC 8030 §7.2's minimum)
 *   maxTtl:   TTLs above this are lowered to it and reported in the TTL response header
 */
export async function startWebPushMock({ tls, h2 = true, port = 0, maxBody = 4096, maxTtl = MAX_TTL } = {}) {
  const subs = new Map(); // id -> {ecdh, auth, publicKey, vapidKey (Buffer|null), gone, script: []}
  const received = [];
  const requests = [];
  const jwts = new Set();
  const conns = connectionTracker();
  let messages = 0;
  let closed = false;
  let origin = '';

  const handler = (req, res) => { handle(req, res).catch((err) => fail(res, 500, 999, `mock error: ${err.message}`)); };
  let server;
  if (!tls) server = http.createServer(handler);
  else if (h2) server = http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true }, handler);
  else server = https.createServer({ key: tls.key, cert: tls.cert }, handler);
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => conns.add(s));
  server.on('clientError', (_err, socket) => socket.destroy());

  function send(res, status, headers, body) {
    if (res.headersSent || res.destroyed) return;
    const payload = body === undefined ? '' : JSON.stringify(body);
    const h = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    h['content-length'] = Buffer.byteLength(payload);
    res.writeHead(status, h);
    res.end(payload);
  }

  function errorBody(status, errno, message) {
    return { code: status, errno, error: REASON[status] ?? 'Error', message, more_info: MORE_INFO };
  }

  function fail(res, status, errno, message, headers = {}) {
    send(res, status, headers, errorBody(status, errno, message));
    return { status, errno, message };
  }

  // Parses `Authorization: vapid t=<jwt>, k=<key>`; null when absent, {error} when malformed.
  function parseVapid(value) {
    if (value === undefined) return null;
    const m = /^vapid\s+(.*)$/is.exec(value.trim());
    if (!m) return { error: 'Authorization scheme must be "vapid"' };
    const params = {};
    for (const part of m[1].split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      params[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
    }
    if (!params.t || !params.k) return { error: 'vapid Authorization needs both t= and k=' };
    return { t: params.t, k: params.k };
  }

  // Validates a VAPID token; returns {claims, header} or {status, message}.
  function checkVapid(vapid, sub) {
    const kRaw = fromB64url(vapid.k);
    const key = kRaw && p256PublicKeyFromRaw(kRaw);
    if (!key) return { status: 403, message: 'Invalid vapid k: not a base64url uncompressed P-256 point' };
    let jwt;
    try {
      jwt = decodeJwt(vapid.t);
    } catch (e) {
      return { status: 403, message: `Invalid vapid token: ${e.message}` };
    }
    const { header, claims } = jwt;
    if (header.alg !== 'ES256') return { status: 403, message: `Invalid vapid token: alg must be ES256, got ${header.alg}` };
    if (!verifyEs256(key, jwt.signingInput, jwt.signature)) {
      return { status: 403, message: 'Invalid vapid token: signature does not verify with k' };
    }
    if (sub.vapidKey && !sub.vapidKey.equals(kRaw)) {
      return { status: 403, message: 'vapid key does not match the applicationServerKey of this subscription' };
    }
    if (claims.aud !== origin) return { status: 403, message: `Invalid vapid aud: expected ${origin}, got ${claims.aud}` };
    const now = nowSeconds();
    if (typeof claims.exp !== 'number' || !Number.isInteger(claims.exp)) return { status: 403, message: 'Invalid vapid exp: not an integer' };
    if (claims.exp <= now) return { status: 403, message: 'Invalid vapid exp: token expired' };
    if (claims.exp > now + 86_400) return { status: 403, message: 'Invalid vapid exp: more than 24 hours in the future' };
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub)) {
      return { status: 403, message: 'Invalid vapid sub: must be a mailto: or https: URI' };
    }
    return { header, claims, kRaw };
  }

  async function handle(req, res) {
    const rec = {
      seq: requests.length + 1, method: req.method, url: req.url, headers: req.headers,
      connection: conns.idOf(req.socket), at: Date.now(), outcome: null,
    };
    requests.push(rec);
    const answer = (outcome) => { rec.outcome = outcome; };
    if (closed) { res.destroy(); return; }

    const m = /^\/push\/([A-Za-z0-9_-]+)$/.exec(req.url.split('?')[0]);
    const sub = m ? subs.get(m[1]) : undefined;
    if (!m || !sub) {
      req.resume();
      answer(fail(res, 404, 102, 'Request did not validate invalid token'));
      return;
    }
    rec.id = m[1];
    if (req.method !== 'POST') {
      req.resume();
      answer(fail(res, 405, 999, 'Only POST is supported on a push resource', { allow: 'POST' }));
      return;
    }
    if (sub.gone) {
      req.resume();
      answer(fail(res, 410, 106, 'Request did not validate subscription is no longer valid'));
      return;
    }

    const { body, tooLarge, aborted } = await readBody(req, maxBody);
    if (aborted) { answer({ aborted: true }); return; }
    if (tooLarge) {
      answer(fail(res, 413, 104, `This message is intended for a constrained device and is limited in size (${maxBody} bytes)`));
      return;
    }

    // RFC 8030 headers.
    const h = req.headers;
    if (h.ttl === undefined) { answer(fail(res, 400, 111, 'Missing TTL header')); return; }
    if (!/^\d+$/.test(h.ttl)) { answer(fail(res, 400, 112, 'Invalid TTL header')); return; }
    const ttl = Math.min(Number(h.ttl), maxTtl);
    if (h.urgency !== undefined && !URGENCIES.has(h.urgency)) {
      answer(fail(res, 400, 999, 'Invalid Urgency header: must be very-low, low, normal or high'));
      return;
    }
    if (h.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(h.topic)) {
      answer(fail(res, 400, 113, 'Topic must be at most 32 characters of the URL-safe base64 alphabet'));
      return;
    }

    // RFC 8292 VAPID.
    let vapid = parseVapid(h.authorization);
    let checked = null;
    if (vapid?.error) {
      // Another scheme (e.g. the legacy "WebPush <JWT>") does not authenticate
      // anything here: fatal only for a subscription that requires VAPID.
      if (sub.vapidKey) { answer(fail(res, 401, 109, vapid.error)); return; }
      vapid = null;
    }
    if (!vapid && sub.vapidKey) {
      answer(fail(res, 401, 109, 'Missing Authorization header: this subscription requires VAPID'));
      return;
    }
    if (vapid) {
      jwts.add(vapid.t);
      checked = checkVapid(vapid, sub);
      if (checked.status) { answer(fail(res, checked.status, 109, checked.message)); return; }
    }

    // RFC 8291 payload.
    let plaintext = null;
    if (body.length > 0) {
      const coding = (h['content-encoding'] ?? '').trim().toLowerCase();
      if (coding !== 'aes128gcm') {
        answer(fail(res, 400, coding ? 110 : 101, coding
          ? `Unsupported Content-Encoding "${h['content-encoding']}": only aes128gcm is accepted`
          : 'Missing Content-Encoding: a body must be aes128gcm-encrypted'));
        return;
      }
      const problem = headerProblem(body, checked?.kRaw);
      if (problem) { answer(fail(res, 400, 110, problem)); return; }
      try {
        plaintext = ece.decrypt(body, { version: 'aes128gcm', privateKey: sub.ecdh, authSecret: sub.auth });
      } catch (e) {
        answer(fail(res, 400, 110, `Decryption failed: ${e.message}`));
        return;
      }
    }

    // Scripted replies come after validation, so a scripted 429 still proves the request was valid.
    // A scripted 2xx (e.g. 202) is still an accepted message and is recorded below.
    const scripted = sub.script.shift();
    const scriptedStatus = scripted ? scripted.status ?? 500 : undefined;
    if (scripted && (scriptedStatus < 200 || scriptedStatus > 299)) {
      if (scripted.body !== undefined) {
        send(res, scriptedStatus, scripted.headers ?? {}, scripted.body);
        answer({ status: scriptedStatus, scripted: true });
      } else {
        const errno = scripted.errno ?? DEFAULT_ERRNO[scriptedStatus] ?? 999;
        const message = scripted.message ?? `scripted ${scriptedStatus}`;
        answer({ ...fail(res, scriptedStatus, errno, message, scripted.headers ?? {}), scripted: true });
      }
      if ((scriptedStatus === 404 || scriptedStatus === 410) && scripted.gone === true) sub.gone = true;
      return;
    }

    messages += 1;
    const msg = {
      id: rec.id,
      seq: messages,
      headers: {
        ttl: Number(h.ttl),
        urgency: h.urgency ?? null,
        topic: h.topic ?? null,
        'content-encoding': h['content-encoding'] ?? null,
        'content-type': h['content-type'] ?? null,
      },
      vapid: checked ? { header: checked.header, claims: checked.claims, k: vapid.k, token: vapid.t } : null,
      body,
      plaintext,
      connection: rec.connection,
      at: Date.now(),
    };
    received.push(msg);
    const status = scriptedStatus ?? 201;
    send(res, status, { location: `${origin}/message/${messages}`, ttl: String(ttl), ...(scripted?.headers ?? {}) });
    answer({ status, ttl, message: messages });
  }

  // Checks the RFC 8188 header before decrypting, so malformed bodies get a precise message.
  function headerProblem(body, vapidKey) {
    if (body.length < 21) return 'aes128gcm body shorter than its 21-byte header';
    const rs = body.readUInt32BE(16);
    const idlen = body[20];
    if (rs < 18) return `aes128gcm record size ${rs} is below 18`;
    if (idlen !== 65) return `aes128gcm keyid must be the 65-byte sender public key, got ${idlen} bytes`;
    if (body.length < 21 + idlen + 17) return 'aes128gcm body has no complete record';
    if (body.length - 86 > rs) return 'a push message must be a single aes128gcm record';
    const asPublic = body.subarray(21, 86);
    if (!p256PublicKeyFromRaw(Buffer.from(asPublic))) return 'aes128gcm keyid is not a P-256 point';
    if (vapidKey && vapidKey.equals(asPublic)) return 'the VAPID key must not be reused as the ECDH key';
    return null;
  }

  const listenPort = await listenLoopback(server, port);
  origin = `${tls ? 'https' : 'http'}://127.0.0.1:${listenPort}`;

  return {
    origin,
    port: listenPort,
    server,
    /** Every accepted message: {id, seq, headers, vapid, body, plaintext (Buffer|null), connection, at}. */
    received,
    /** Every request with its outcome (accepted, rejected, scripted). */
    requests,
    /** TCP connections accepted so far. */
    get connections() { return conns.count; },
    /** Distinct VAPID JWTs seen (valid or not), in first-seen order. */
    get jwts() { return [...jwts]; },

    /**
     * Registers a subscription as a browser would after PushManager.subscribe():
     * a fresh P-256 key pair and 16-byte auth secret. With vapidPublicKey
     * (base64url 65-byte point) the subscription is restricted to that
     * application server key (RFC 8292 §4.2).
     * Returns {id, subscription: {endpoint, keys: {p256dh, auth}}}.
     */
    newSubscription({ vapidPublicKey } = {}) {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const auth = randomBytes(16);
      const id = b64url(randomBytes(18));
      let vapidKey = null;
      if (vapidPublicKey !== undefined) {
        vapidKey = fromB64url(vapidPublicKey);
        if (!vapidKey || !p256PublicKeyFromRaw(vapidKey)) throw new Error('newSubscription: vapidPublicKey is not a base64url P-256 point');
      }
      subs.set(id, { ecdh, auth, vapidKey, gone: false, script: [] });
      return {
        id,
        subscription: {
          endpoint: `${origin}/push/${id}`,
          keys: { p256dh: b64url(ecdh.getPublicKey()), auth: b64url(auth) },
        },
      };
    },

    /**
     * Queues replies for a subscription, used one per valid request before the
     * mock answers normally again. Each: {status, headers?, errno?, message?,
     * body? (replaces the autopush JSON), gone? (404/410: stay gone afterwards)}.
     */
    script(id, responses) {
      const sub = subs.get(id);
      if (!sub) throw new Error(`script: unknown subscription ${id}`);
      sub.script.push(...(Array.isArray(responses) ? responses : [responses]));
    },

    /** The subscription is gone: later sends answer 410. */
    unsubscribe(id) {
      const sub = subs.get(id);
      if (!sub) throw new Error(`unsubscribe: unknown subscription ${id}`);
      sub.gone = true;
    },

    /** Messages accepted for one subscription. */
    forSubscription(id) { return received.filter((m) => m.id === id); },

    /** Stops listening and ends every connection. */
    async close() {
      if (closed) return;
      closed = true;
      const done = closeServer(server);
      server.closeAllConnections?.();
      conns.destroyAll();
      await done;
    },
  };
}

/**
 * Sends with the npm `web-push` library (an independent implementation of
 * RFC 8291/8292), for proving the mock and as a reference sender.
 *   subscription: {endpoint, keys}; payload: string | Buffer | null
 *   vapid: {subject, publicKey, privateKey} (base64url) or null for no VAPID
 *   options: web-push options (TTL, urgency, topic, headers, timeout, ...) plus
 *            `ca` (PEM trusted for an https endpoint)
 * Resolves web-push's {statusCode, body, headers}; rejects with its WebPushError.
 */
export async function sendWithWebPushLibrary(subscription, payload, vapid, options = {}) {
  const webpush = e2eRequire('web-push');
  const { ca, ...rest } = options;
  const agent = new https.Agent({ ca, keepAlive: false });
  try {
    return await webpush.sendNotification(subscription, payload ?? null, {
      timeout: 5_000,
      ...rest,
      vapidDetails: vapid ?? null,
      agent,
    });
  } finally {
    agent.destroy();
  }
}
