// A loopback Apple Push Notification service (HTTP/2 provider API) for
// Herald's end-to-end tests.
//
//   const apns = await startApnsMock({tls: pki.server});      // h2 over TLS (ALPN h2 only)
//   apns.addKey({keyId, teamId, publicKeyPem});                // what the .p8 verifies against
//   apns.setToken(deviceHex, 'Unregistered');                  // scripted answers per device
//   ... Herald sends POST /3/device/<hex> ...
//   apns.received[0].payload, apns.received[0].jwt
//   await apns.close();
//
// Validation follows Apple's documented order of concerns: method (405),
// :path (404 BadPath / 400 MissingDeviceToken / BadDeviceToken), repeated
// headers (DuplicateHeaders), authentication (provider token ES256 verified
// with the registered key: InvalidProviderToken, ExpiredProviderToken after
// 1 h, MissingProviderToken; or a TLS client certificate from the client CA:
// BadCertificate), apns-id, apns-topic, apns-push-type, apns-priority,
// apns-expiration, apns-collapse-id, then the body (PayloadEmpty,
// PayloadTooLarge over 4096 bytes or 5120 for voip, and a JSON object with an
// `aps` object). Every reply carries apns-id; errors are {"reason": "..."}
// (+ "timestamp" in ms for 410). A payload that is not a JSON object with an
// `aps` object gets 400 {"reason":"BadPayload"}: Apple documents no reason
// for that case, so that string is this mock's own.
//
// Plain h2c (no tls) is for clients that speak HTTP/2 with prior knowledge;
// @parse/node-apn can only reach it through its private
// `provider.client._mockOverrideUrl`.

import { createPublicKey, randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import {
  closeServer, connectionTracker, decodeJwt, listenLoopback, nowSeconds, readBody, verifyEs256,
} from '../../../test/e2e/mock_support.mjs';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/** HTTP status for every reason Apple documents. */
export const APNS_REASONS = {
  BadCollapseId: 400, BadDeviceToken: 400, BadExpirationDate: 400, BadMessageId: 400, BadPriority: 400,
  BadTopic: 400, DeviceTokenNotForTopic: 400, DuplicateHeaders: 400, IdleTimeout: 400, InvalidPushType: 400,
  MissingDeviceToken: 400, MissingTopic: 400, PayloadEmpty: 400, TopicDisallowed: 400,
  BadCertificate: 403, BadCertificateEnvironment: 403, ExpiredProviderToken: 403, Forbidden: 403,
  InvalidProviderToken: 403, MissingProviderToken: 403, UnrelatedKeyIdInToken: 403, BadEnvironmentKeyIdInToken: 403,
  BadPath: 404, MethodNotAllowed: 405, ExpiredToken: 410, Unregistered: 410, PayloadTooLarge: 413,
  TooManyProviderTokenUpdates: 429, TooManyRequests: 429, InternalServerError: 500, ServiceUnavailable: 503,
  Shutdown: 503,
};
const STATUS_REASON = { 400: 'BadDeviceToken', 403: 'Forbidden', 404: 'BadPath', 405: 'MethodNotAllowed', 410: 'Unregistered', 413: 'PayloadTooLarge', 429: 'TooManyRequests', 500: 'InternalServerError', 503: 'ServiceUnavailable' };

const PUSH_TYPES = new Set(['alert', 'background', 'location', 'voip', 'complication', 'fileprovider', 'mdm',
  'liveactivity', 'pushtotalk', 'widgets', 'controls']);
// Topic suffixes Apple appends to the bundle id for some push types.
const TOPIC_SUFFIXES = ['.voip-ptt', '.voip', '.complication', '.pushkit.fileprovider', '.location-query',
  '.push-type.liveactivity', '.push-type.widgets', '.push-type.controls'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SINGLE_HEADERS = ['authorization', 'apns-id', 'apns-topic', 'apns-push-type', 'apns-priority',
  'apns-expiration', 'apns-collapse-id', 'content-length'];

const SESSION = Symbol('apnsMockSession');

/** The bundle id under a topic (strips the push-type suffix Apple adds). */
export function bundleOfTopic(topic) {
  for (const s of TOPIC_SUFFIXES) if (topic.endsWith(s)) return topic.slice(0, -s.length);
  return topic;
}

function normalizeSpec(spec, defaultTimes) {
  if (typeof spec === 'string') spec = { reason: spec };
  if (typeof spec === 'number') spec = { status: spec };
  const status = spec.status ?? APNS_REASONS[spec.reason] ?? 400;
  return {
    status,
    reason: spec.reason ?? STATUS_REASON[status] ?? 'InternalServerError',
    timestamp: spec.timestamp,
    headers: spec.headers ?? {},
    times: spec.times ?? defaultTimes,
  };
}

/**
 * Starts the mock on 127.0.0.1.
 *   tls:                 {key, cert} PEM (h2 over TLS, ALPN h2 only); undefined = h2c
 *   requestClientCert:   ask TLS clients for a certificate (certificate-based auth)
 *   clientCa:            PEM of the CA that signs accepted client certificates
 *   maxConcurrentStreams SETTINGS_MAX_CONCURRENT_STREAMS (default 1000)
 *   oneStreamUntilValidToken: advertise 1 stream until the first valid provider
 *                        token on a connection, then maxConcurrentStreams (Apple does this)
 *   allowedTopics:       bundle ids that may be pushed to (others: 400 TopicDisallowed)
 *   tokenUpdateMinSeconds: if > 0, a new token for a key whose previous token is
 *                        younger than this gets 429 TooManyProviderTokenUpdates
 *   port:                0 (default) = any free port
 */
export async function startApnsMock({
  tls, requestClientCert = false, clientCa, port = 0, maxConcurrentStreams = 1000,
  oneStreamUntilValidToken = false, allowedTopics, tokenUpdateMinSeconds = 0,
} = {}) {
  const keys = new Map(); // kid -> {keyId, teamId, publicKey, topics, revoked}
  const scripts = new Map(); // lowercase device hex -> [spec...]
  const received = [];
  const requests = [];
  const jwts = new Set();
  const lastTokenByKid = new Map(); // kid -> {token, iat}
  const sessions = new Set();
  const sockets = connectionTracker();
  const allowed = allowedTopics ? new Set(allowedTopics) : null;
  let sessionCount = 0;
  let plan = null; // goawayAfter: {id, n, reason, errorCode, every}
  let planSeq = 0;
  let closed = false;

  const settings = { maxConcurrentStreams: oneStreamUntilValidToken ? 1 : maxConcurrentStreams };
  const server = tls
    ? http2.createSecureServer({
      key: tls.key,
      cert: tls.cert,
      allowHTTP1: false,
      minVersion: 'TLSv1.2',
      settings,
      ...(requestClientCert ? { requestCert: true, rejectUnauthorized: false, ca: clientCa } : {}),
    })
    : http2.createServer({ settings });

  server.on('connection', (s) => sockets.add(s));
  server.on('unknownProtocol', (socket) => socket.destroy()); // HTTP/1.1 (no h2 in ALPN)
  server.on('session', (session) => {
    sessionCount += 1;
    const state = {
      id: sessionCount, team: null, widened: !oneStreamUntilValidToken, planId: 0, sincePlan: 0,
      goingAway: false, clientSubject: null, clientAuthorized: false, clientError: null,
    };
    session[SESSION] = state;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => { /* peer reset */ });
    if (tls && requestClientCert) {
      const sock = session.socket;
      const peer = sock.getPeerCertificate?.();
      if (peer && Object.keys(peer).length > 0) {
        state.clientSubject = { ...peer.subject };
        state.clientAuthorized = sock.authorized === true;
        state.clientError = sock.authorizationError ?? null;
      }
    }
  });
  server.on('stream', (stream, headers, _flags, rawHeaders) => {
    stream.on('error', () => { /* reset by the client */ });
    handle(stream, headers, rawHeaders).catch((err) => {
      try {
        if (!stream.headersSent && !stream.destroyed) {
          stream.respond({ ':status': 500, 'apns-id': randomUUID(), 'content-type': 'application/json' });
          stream.end(JSON.stringify({ reason: 'InternalServerError', detail: String(err?.message) }));
        }
      } catch { /* gone */ }
    });
  });

  function respond(stream, status, apnsId, body, extra = {}) {
    if (stream.destroyed || stream.headersSent) return;
    const h = { ':status': status, 'apns-id': apnsId, ...extra };
    if (body !== undefined) h['content-type'] = 'application/json';
    try {
      stream.respond(h, { endStream: body === undefined });
      if (body !== undefined) stream.end(JSON.stringify(body));
    } catch { /* the stream went away */ }
  }

  // Checks a provider token; returns {jwt} or {reason}.
  function checkToken(token, state) {
    jwts.add(token);
    let jwt;
    try {
      jwt = decodeJwt(token);
    } catch {
      return { reason: 'InvalidProviderToken' };
    }
    const { header, claims } = jwt;
    const info = { kid: header.kid ?? null, iss: claims.iss ?? null, iat: claims.iat ?? null, alg: header.alg ?? null };
    const key = keys.get(header.kid);
    if (header.alg !== 'ES256' || !key || key.revoked) return { reason: 'InvalidProviderToken', info };
    if (claims.iss !== key.teamId || !Number.isInteger(claims.iat)) return { reason: 'InvalidProviderToken', info };
    if (!verifyEs256(key.publicKey, jwt.signingInput, jwt.signature)) return { reason: 'InvalidProviderToken', info };
    const now = nowSeconds();
    if (claims.iat > now + 300) return { reason: 'InvalidProviderToken', info };
    if (now - claims.iat > 3600) return { reason: 'ExpiredProviderToken', info };
    if (state.team && state.team !== key.teamId) return { reason: 'UnrelatedKeyIdInToken', info };
    if (tokenUpdateMinSeconds > 0) {
      const last = lastTokenByKid.get(key.keyId);
      if (last && last.token !== token && claims.iat - last.iat < tokenUpdateMinSeconds) {
        return { reason: 'TooManyProviderTokenUpdates', info };
      }
      if (!last || last.token !== token) lastTokenByKid.set(key.keyId, { token, iat: claims.iat });
    }
    return { info, key };
  }

  async function handle(stream, headers, rawHeaders) {
    const session = stream.session;
    const state = session[SESSION];
    const rec = {
      seq: requests.length + 1, connection: state.id, streamId: stream.id, headers: Object.fromEntries(Object.entries(headers)),
      token: null, status: null, reason: null, at: Date.now(),
    };
    requests.push(rec);
    if (closed) { stream.close(NGHTTP2_REFUSED_STREAM); return; }
    if (state.goingAway) {
      rec.status = 'refused';
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }

    // goawayAfter(n): the n-th request from now on this connection is the last one answered.
    let lastOnThisSession = false;
    if (plan) {
      if (state.planId !== plan.id) { state.planId = plan.id; state.sincePlan = 0; }
      state.sincePlan += 1;
      if (state.sincePlan >= plan.n) {
        lastOnThisSession = true;
        state.goingAway = true;
        try {
          session.goaway(plan.errorCode, stream.id, Buffer.from(JSON.stringify({ reason: plan.reason })));
        } catch { /* session already closing */ }
        if (!plan.every) plan = null;
      }
    }

    const apnsIdHeader = headers['apns-id'];
    const apnsId = typeof apnsIdHeader === 'string' && UUID_RE.test(apnsIdHeader) ? apnsIdHeader : randomUUID();
    const fail = (reason, extra = {}) => {
      const status = APNS_REASONS[reason];
      const body = { reason };
      if (status === 410) body.timestamp = extra.timestamp ?? Date.now();
      respond(stream, status, apnsId, body, extra.headers);
      rec.status = status;
      rec.reason = reason;
    };
    try {
      await validateAndAnswer(stream, headers, rawHeaders, state, rec, apnsId, fail);
    } finally {
      if (lastOnThisSession) {
        const closeIt = () => { try { session.close(); } catch { /* already closed */ } };
        if (stream.closed) closeIt(); else stream.once('close', closeIt);
      }
    }
  }

  async function validateAndAnswer(stream, headers, rawHeaders, state, rec, apnsId, fail) {
    const method = headers[':method'];
    const path = (headers[':path'] ?? '').split('?')[0];
    const pushType = headers['apns-push-type'];
    const limit = pushType === 'voip' ? 5120 : 4096;
    const { body, tooLarge, aborted } = await readBody(stream, limit);
    if (aborted) { rec.status = 'aborted'; return; }

    if (method !== 'POST') return fail('MethodNotAllowed');
    const m = /^\/3\/device\/(.*)$/.exec(path);
    if (!m) return fail('BadPath');
    const token = m[1];
    rec.token = token;
    if (token === '') return fail('MissingDeviceToken');
    if (!/^[0-9a-fA-F]+$/.test(token) || token.length % 2 !== 0) return fail('BadDeviceToken');

    const seen = new Set();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = String(rawHeaders[i]).toLowerCase();
      if (!SINGLE_HEADERS.includes(name)) continue;
      if (seen.has(name)) return fail('DuplicateHeaders');
      seen.add(name);
    }

    // Authentication: provider token, else a client certificate.
    let jwt = null;
    let key = null;
    const auth = headers.authorization;
    if (auth !== undefined) {
      const am = /^bearer\s+(\S+)$/i.exec(auth.trim());
      if (!am) return fail('InvalidProviderToken');
      const checked = checkToken(am[1], state);
      if (checked.reason) { rec.jwt = checked.info ?? null; return fail(checked.reason); }
      jwt = checked.info;
      key = checked.key;
      state.team ??= key.teamId;
      if (!state.widened) {
        state.widened = true;
        try { stream.session.settings({ maxConcurrentStreams }); } catch { /* closing */ }
      }
    } else if (state.clientSubject) {
      if (!state.clientAuthorized) return fail('BadCertificate');
    } else {
      return fail('MissingProviderToken');
    }
    rec.jwt = jwt;

    if (headers['apns-id'] !== undefined && !UUID_RE.test(headers['apns-id'])) return fail('BadMessageId');

    let topic = headers['apns-topic'];
    if (topic === undefined || topic === '') {
      if (!jwt && state.clientSubject?.UID) topic = state.clientSubject.UID; // single-topic certificate
      else return fail('MissingTopic');
    }
    if (!/^[A-Za-z0-9._-]+$/.test(topic)) return fail('BadTopic');
    const bundle = bundleOfTopic(topic);
    if (allowed && !allowed.has(bundle) && !allowed.has(topic)) return fail('TopicDisallowed');
    if (key?.topics && !key.topics.includes(bundle) && !key.topics.includes(topic)) return fail('TopicDisallowed');
    if (!jwt && state.clientSubject?.UID && bundle !== state.clientSubject.UID) return fail('TopicDisallowed');

    if (pushType !== undefined && !PUSH_TYPES.has(pushType)) return fail('InvalidPushType');
    const prio = headers['apns-priority'];
    if (prio !== undefined && !['10', '5', '1'].includes(prio)) return fail('BadPriority');
    const exp = headers['apns-expiration'];
    if (exp !== undefined && !/^\d{1,19}$/.test(exp)) return fail('BadExpirationDate');
    const collapse = headers['apns-collapse-id'];
    if (collapse !== undefined && Buffer.byteLength(collapse) > 64) return fail('BadCollapseId');

    if (tooLarge) return fail('PayloadTooLarge');
    if (body.length === 0) return fail('PayloadEmpty');
    let payload;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      payload = undefined;
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)
      || payload.aps === null || typeof payload.aps !== 'object' || Array.isArray(payload.aps)) {
      respond(stream, 400, apnsId, { reason: 'BadPayload' });
      rec.status = 400;
      rec.reason = 'BadPayload';
      return undefined;
    }

    // Scripted per-device answers (after validation, so they only hit valid requests).
    const queue = scripts.get(token.toLowerCase());
    if (queue && queue.length > 0) {
      const spec = queue[0];
      spec.times -= 1;
      if (spec.times <= 0) queue.shift();
      const b = { reason: spec.reason };
      if (spec.status === 410) b.timestamp = spec.timestamp ?? Date.now();
      respond(stream, spec.status, apnsId, b, spec.headers);
      rec.status = spec.status;
      rec.reason = spec.reason;
      rec.scripted = true;
      return undefined;
    }

    received.push({
      token,
      headers: Object.fromEntries(Object.entries(headers)),
      topic,
      payload,
      body: body.toString('utf8'),
      apnsId,
      jwt,
      clientSubject: state.clientSubject,
      connection: state.id,
      at: Date.now(),
    });
    respond(stream, 200, apnsId);
    rec.status = 200;
    return undefined;
  }

  const listenPort = await listenLoopback(server, port);
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${listenPort}`;

  return {
    origin,
    port: listenPort,
    server,
    /** Accepted notifications: {token, headers, topic, payload, body, apnsId, jwt: {kid, iss, iat, alg}|null, clientSubject, connection, at}. */
    received,
    /** Every request: {seq, connection, streamId, headers, token, status, reason, jwt, scripted?, at}. */
    requests,
    /** HTTP/2 sessions opened so far. */
    get connections() { return sessionCount; },
    /** Sessions open now. */
    get openConnections() { return sessions.size; },
    /** Distinct provider tokens seen (valid or not), in first-seen order. */
    get jwts() { return [...jwts]; },

    /**
     * Registers a provider-token key: the public half of a .p8 key (PEM SPKI,
     * or a PKCS#8 private key PEM, whose public half is used). topics: optional
     * bundle ids this key may push to.
     */
    addKey({ keyId, teamId, publicKeyPem, topics }) {
      if (!keyId || !teamId || !publicKeyPem) throw new Error('addKey: keyId, teamId and publicKeyPem are required');
      keys.set(keyId, { keyId, teamId, publicKey: createPublicKey(publicKeyPem), topics: topics ?? null, revoked: false });
    },
    /** Later tokens signed with this key id get 403 InvalidProviderToken. */
    revokeKey(keyId) {
      const k = keys.get(keyId);
      if (k) k.revoked = true;
    },

    /**
     * Scripts the answers for one device token (hex, case-insensitive), used
     * after a request passed validation:
     *   'Unregistered' | {status?, reason?, timestamp?, headers?, times?}  -> that answer
     *     `times` times (default: always); 410 bodies carry `timestamp` (ms, default now)
     *   [spec, spec, ...]  -> each once (unless it sets times), in order, then normal
     *   null               -> normal answers again
     */
    setToken(deviceHex, spec) {
      const k = String(deviceHex).toLowerCase();
      if (spec === null || spec === undefined) { scripts.delete(k); return; }
      scripts.set(k, Array.isArray(spec) ? spec.map((s) => normalizeSpec(s, 1)) : [normalizeSpec(spec, Infinity)]);
    },

    /**
     * After `n` more requests on a connection (counted from this call; the
     * n-th is answered), send GOAWAY (last-stream-id = that request, debug
     * data {"reason": reason}) and close it; requests above the last stream id
     * are refused unanswered (REFUSED_STREAM), so the client must resend them
     * on a new connection. One-shot unless every=true (then every connection
     * goes away after n requests). goawayAfter(null) cancels.
     */
    goawayAfter(n, { reason = 'Shutdown', errorCode = NGHTTP2_NO_ERROR, every = false } = {}) {
      if (n === null || n === undefined) { plan = null; return; }
      if (!Number.isInteger(n) || n < 1) throw new Error('goawayAfter: n must be an integer >= 1');
      planSeq += 1;
      plan = { id: planSeq, n, reason, errorCode, every };
    },

    /** Destroys every open connection at once (a network failure, no GOAWAY). */
    dropConnections() {
      for (const s of sessions) s.destroy();
      sockets.destroyAll();
    },

    forToken(deviceHex) {
      const k = String(deviceHex).toLowerCase();
      return received.filter((r) => r.token.toLowerCase() === k);
    },

    /** Stops listening and ends every connection. */
    async close() {
      if (closed) return;
      closed = true;
      const done = closeServer(server);
      for (const s of sessions) s.destroy();
      sockets.destroyAll();
      await done;
    },
  };
}
