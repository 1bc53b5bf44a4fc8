// A loopback Firebase Cloud Messaging HTTP v1 API plus Google's OAuth 2.0
// token endpoint (JWT-bearer grant), on one server, for Herald's e2e tests.
//
//   const fcm = await startFcmMock({tls: pki.server});
//   const sa = fcm.makeServiceAccount({projectId: 'demo-proj'});  // sa.json = the key file
//   ... Herald POSTs <origin>/token (assertion signed with sa's key), then
//       <origin>/v1/projects/demo-proj/messages:send with the Bearer token ...
//   fcm.setToken('tok-dead', 'UNREGISTERED');
//   fcm.received[0].message
//   await fcm.close();
//
// Transport: with tls, HTTP/2 (ALPN h2) and HTTP/1.1 on the same port. Without
// tls, `h2c` chooses: 'auto' (default) serves HTTP/1.1 and HTTP/2 with prior
// knowledge on one port by sniffing the connection preface; true = h2c only;
// false = HTTP/1.1 only.
//
// Token endpoint (POST /token, form body): RS256 assertion verified with the
// service account's public key; iss = client_email, aud = token_uri, scope with
// firebase.messaging or cloud-platform (another scope gets a token that FCM
// refuses with 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT, as Google does), lifetime
// <= 3600 s, iat not in the future beyond 60 s. Errors: 400
// {"error":"invalid_grant"|"invalid_scope"|"invalid_request"|"unsupported_grant_type","error_description"}.
//
// messages:send: Bearer token valid and for this project (401 UNAUTHENTICATED /
// 403 PERMISSION_DENIED), then the body is checked as Google's proto3 JSON
// parser does (unknown fields, types, Duration strings, snake_case and
// lowerCamelCase both accepted; 400 INVALID_ARGUMENT with
// google.rpc.BadRequest fieldViolations), then FCM's own rules (exactly one
// target, token syntax, reserved data keys, payload size 4096 bytes, 2048 for
// topic messages). Errors are google.rpc.Status JSON with FcmError details
// where FCM sends them.

import { generateKeyPairSync, createPublicKey, randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import {
  b64url, closeServer, connectionTracker, decodeJwt, isPlainObject, listenLoopback, nowSeconds,
  readBody, verifyRs256,
} from '../../../test/e2e/mock_support.mjs';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const FCM_SCOPES = ['https://www.googleapis.com/auth/firebase.messaging', 'https://www.googleapis.com/auth/cloud-platform'];
const FCM_ERROR = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST = 'type.googleapis.com/google.rpc.BadRequest';
const ERROR_INFO = 'type.googleapis.com/google.rpc.ErrorInfo';
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const MAX_REQUEST_BYTES = 1024 * 1024;
const SEND_METHOD = 'google.firebase.fcm.v1.FcmService.SendMessage';
const CRED_HELP = 'Expected OAuth 2 access token, login cookie or other valid authentication credential. '
  + 'See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const SHORT_LIVED = 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. '
  + 'Check your iat and exp values in the JWT claim.';
const INVALID_TOKEN_TEXT = 'The registration token is not a valid FCM registration token';

// ------------------------------------------------------------ message schema
// Field names are the proto (snake_case) names; the lowerCamelCase JSON names
// are derived. Types: 'string' 'bool' 'int' 'float' 'duration' 'timestamp'
// 'map' (map<string,string>) 'struct' (any JSON object), {enum}, {array},
// {message}.

const en = (typeName, values) => ({ enum: values, typeName });
const arr = (of) => ({ array: of });
const msg = (typeName, fields) => ({ message: fields, typeName });

const NOTIFICATION = msg('google.firebase.fcm.v1.Notification', { title: 'string', body: 'string', image: 'string' });
const COLOR = msg('google.type.Color', { red: 'float', green: 'float', blue: 'float', alpha: 'float' });
const LIGHT_SETTINGS = msg('google.firebase.fcm.v1.LightSettings', {
  color: COLOR, light_on_duration: 'duration', light_off_duration: 'duration',
});
const ANDROID_NOTIFICATION = msg('google.firebase.fcm.v1.AndroidNotification', {
  title: 'string', body: 'string', icon: 'string', color: 'string', sound: 'string', tag: 'string',
  click_action: 'string', body_loc_key: 'string', body_loc_args: arr('string'), title_loc_key: 'string',
  title_loc_args: arr('string'), channel_id: 'string', ticker: 'string', sticky: 'bool', event_time: 'timestamp',
  local_only: 'bool',
  notification_priority: en('google.firebase.fcm.v1.AndroidNotification.NotificationPriority',
    ['PRIORITY_UNSPECIFIED', 'PRIORITY_MIN', 'PRIORITY_LOW', 'PRIORITY_DEFAULT', 'PRIORITY_HIGH', 'PRIORITY_MAX']),
  default_sound: 'bool', default_vibrate_timings: 'bool', default_light_settings: 'bool',
  vibrate_timings: arr('duration'),
  visibility: en('google.firebase.fcm.v1.AndroidNotification.Visibility', ['VISIBILITY_UNSPECIFIED', 'PRIVATE', 'PUBLIC', 'SECRET']),
  notification_count: 'int', light_settings: LIGHT_SETTINGS, image: 'string', bypass_proxy_notification: 'bool',
  proxy: en('google.firebase.fcm.v1.AndroidNotification.Proxy', ['PROXY_UNSPECIFIED', 'ALLOW', 'DENY', 'IF_PRIORITY_LOWERED']),
});
const ANDROID = msg('google.firebase.fcm.v1.AndroidConfig', {
  collapse_key: 'string',
  priority: en('google.firebase.fcm.v1.AndroidMessagePriority', ['NORMAL', 'HIGH']),
  ttl: 'duration', restricted_package_name: 'string', data: 'map', notification: ANDROID_NOTIFICATION,
  fcm_options: msg('google.firebase.fcm.v1.AndroidFcmOptions', { analytics_label: 'string' }),
  direct_boot_ok: 'bool', bandwidth_constrained_ok: 'bool', restricted_satellite_ok: 'bool',
});
const APNS = msg('google.firebase.fcm.v1.ApnsConfig', {
  headers: 'map', payload: 'struct',
  fcm_options: msg('google.firebase.fcm.v1.ApnsFcmOptions', { analytics_label: 'string', image: 'string' }),
  live_activity_token: 'string',
});
const WEBPUSH = msg('google.firebase.fcm.v1.WebpushConfig', {
  headers: 'map', data: 'map', notification: 'struct',
  fcm_options: msg('google.firebase.fcm.v1.WebpushFcmOptions', { link: 'string', analytics_label: 'string' }),
});
const MESSAGE = msg('google.firebase.fcm.v1.Message', {
  name: 'string', data: 'map', notification: NOTIFICATION, android: ANDROID, webpush: WEBPUSH, apns: APNS,
  fcm_options: msg('google.firebase.fcm.v1.FcmOptions', { analytics_label: 'string' }),
  token: 'string', topic: 'string', condition: 'string',
});
const SEND_REQUEST = msg('google.firebase.fcm.v1.SendMessageRequest', { message: MESSAGE, validate_only: 'bool' });

const camel = (snake) => snake.replace(/_([a-z0-9])/g, (_m, c) => c.toUpperCase());
const PROTO_TYPE = { string: 'TYPE_STRING', bool: 'TYPE_BOOL', int: 'TYPE_INT32', float: 'TYPE_FLOAT' };

/**
 * Checks `value` against a schema type the way Google's proto3 JSON parser
 * does. Pushes {field, description} violations. Returns the value rewritten
 * with snake_case field names (so later checks read one spelling).
 */
function checkType(type, value, path, out) {
  if (value === null) return null; // proto3 JSON: null = default value
  const bad = (typeName) => {
    out.push({ field: path, description: `Invalid value at '${path}' (${typeName}), ${JSON.stringify(value)}` });
  };
  if (typeof type === 'string') {
    switch (type) {
      case 'string': if (typeof value !== 'string') bad(PROTO_TYPE.string); return value;
      case 'bool': if (typeof value !== 'boolean') bad(PROTO_TYPE.bool); return value;
      case 'int':
        if (!(Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value)))) bad(PROTO_TYPE.int);
        return value;
      case 'float': if (typeof value !== 'number') bad(PROTO_TYPE.float); return value;
      case 'duration':
        if (typeof value !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(value)) bad('type.googleapis.com/google.protobuf.Duration');
        return value;
      case 'timestamp':
        if (typeof value !== 'string' || Number.isNaN(Date.parse(value)) || !/^\d{4}-\d\d-\d\dT/.test(value)) {
          bad('type.googleapis.com/google.protobuf.Timestamp');
        }
        return value;
      case 'map': {
        if (!isPlainObject(value)) { bad('map<string, string>'); return value; }
        Object.entries(value).forEach(([, v], i) => {
          if (typeof v !== 'string') {
            out.push({ field: `${path}[${i}].value`, description: `Invalid value at '${path}[${i}].value' (TYPE_STRING), ${JSON.stringify(v)}` });
          }
        });
        return value;
      }
      case 'struct': if (!isPlainObject(value)) bad('type.googleapis.com/google.protobuf.Struct'); return value;
      default: throw new Error(`schema: unknown type ${type}`);
    }
  }
  if (type.enum) {
    const ok = (typeof value === 'string' && type.enum.includes(value.toUpperCase()))
      || (Number.isInteger(value) && value >= 0 && value < type.enum.length);
    if (!ok) bad(`type.googleapis.com/${type.typeName}`);
    return value;
  }
  if (type.array) {
    if (!Array.isArray(value)) { bad(`repeated ${typeof type.array === 'string' ? PROTO_TYPE[type.array] ?? type.array : type.array.typeName}`); return value; }
    return value.map((v, i) => checkType(type.array, v, `${path}[${i}]`, out));
  }
  // A message.
  if (!isPlainObject(value)) { bad(`type.googleapis.com/${type.typeName}`); return value; }
  const result = {};
  for (const [key, v] of Object.entries(value)) {
    const snake = Object.hasOwn(type.message, key) ? key
      : Object.keys(type.message).find((f) => camel(f) === key);
    if (!snake) {
      const at = path ? ` at '${path}'` : '';
      out.push({ field: path, description: `Invalid JSON payload received. Unknown name "${key}"${at}: Cannot find field.` });
      continue;
    }
    result[snake] = checkType(type.message[snake], v, path ? `${path}.${snake}` : snake, out);
  }
  return result;
}

// FCM's own (non-JSON) rules; returns {description, field} or null.
function fcmRules(m, maxPayload) {
  const targets = ['token', 'topic', 'condition'].filter((k) => typeof m[k] === 'string' && m[k] !== '');
  if (targets.length === 0) return { field: 'message', description: 'Recipient of the message is not set.' };
  if (targets.length > 1) {
    return {
      field: 'message', json: true,
      description: `Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '${camel(targets[1])}'`,
    };
  }
  if (m.token !== undefined && m.token !== null && m.token !== '' && !/^[A-Za-z0-9_:.\-]{1,4096}$/.test(m.token)) {
    return { field: 'message.token', description: INVALID_TOKEN_TEXT };
  }
  if (typeof m.topic === 'string' && m.topic !== '' && !/^[a-zA-Z0-9\-_.~%]{1,900}$/.test(m.topic)) {
    return { field: 'message.topic', description: `Invalid topic name ${m.topic}` };
  }
  if (typeof m.condition === 'string' && m.condition !== '') {
    const topics = m.condition.match(/in\s+topics/g) ?? [];
    if (topics.length === 0) return { field: 'message.condition', description: 'Invalid condition expression provided.' };
    if (topics.length > 5) return { field: 'message.condition', description: 'Condition may reference at most 5 topics.' };
  }
  const dataMaps = [['message.data', m.data], ['message.android.data', m.android?.data], ['message.webpush.data', m.webpush?.data]];
  for (const [field, data] of dataMaps) {
    for (const key of Object.keys(data ?? {})) {
      if (key === 'from' || key === 'message_type' || /^(google|gcm)/i.test(key)) {
        return { field, description: `Invalid data payload key: ${key}` };
      }
    }
  }
  const ttl = m.android?.ttl;
  if (typeof ttl === 'string' && ttl.startsWith('-')) return { field: 'message.android.ttl', description: 'TTL must not be negative' };
  const color = m.android?.notification?.color;
  if (typeof color === 'string' && !/^#[0-9a-fA-F]{6}$/.test(color)) {
    return { field: 'message.android.notification.color', description: 'Invalid color format: use #rrggbb' };
  }
  const link = m.webpush?.fcm_options?.link;
  if (typeof link === 'string' && !link.startsWith('https://')) {
    return { field: 'message.webpush.fcm_options.link', description: 'The link must be an HTTPS URL' };
  }
  const size = payloadBytes(m);
  const limit = m.topic ? maxPayload.topic : maxPayload.token;
  if (size > limit) return { field: 'message', description: `Message is too big (${size} bytes; the limit is ${limit})` };
  return null;
}

// Bytes FCM counts against the payload limit: keys + values of the data maps
// and notification fields, and the APNs/web-push JSON payloads.
function payloadBytes(m) {
  const kv = (o) => Object.entries(o ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k)
    + (typeof v === 'string' ? Buffer.byteLength(v) : Buffer.byteLength(JSON.stringify(v) ?? '')), 0);
  return kv(m.data) + kv(m.notification) + kv(m.android?.data) + kv(m.android?.notification)
    + kv(m.webpush?.data) + kv(m.webpush?.notification)
    + (m.apns?.payload ? Buffer.byteLength(JSON.stringify(m.apns.payload)) : 0);
}

// ------------------------------------------------------------ error bodies

function rpcError(code, status, message, details) {
  const error = { code, message, status };
  if (details && details.length) error.details = details;
  return { error };
}
const fcmDetail = (errorCode) => ({ '@type': FCM_ERROR, errorCode });
const badRequest = (violations) => ({ '@type': BAD_REQUEST, fieldViolations: violations });
const errorInfo = (reason) => ({
  '@type': ERROR_INFO, reason, domain: 'googleapis.com',
  metadata: { service: 'fcm.googleapis.com', method: SEND_METHOD },
});

/** Scripted token states: status, rpc status, message, FcmError code. */
export const FCM_STATES = {
  UNREGISTERED: [404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'],
  INVALID: [400, 'INVALID_ARGUMENT', INVALID_TOKEN_TEXT, 'INVALID_ARGUMENT'],
  INVALID_ARGUMENT: [400, 'INVALID_ARGUMENT', INVALID_TOKEN_TEXT, 'INVALID_ARGUMENT'],
  SENDER_ID_MISMATCH: [403, 'PERMISSION_DENIED', 'SenderId mismatch', 'SENDER_ID_MISMATCH'],
  QUOTA_EXCEEDED: [429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric \'Send requests\' of service \'fcm.googleapis.com\'.', 'QUOTA_EXCEEDED'],
  UNAVAILABLE: [503, 'UNAVAILABLE', 'The service is currently unavailable.', 'UNAVAILABLE'],
  INTERNAL: [500, 'INTERNAL', 'Internal error encountered.', 'INTERNAL'],
  THIRD_PARTY_AUTH_ERROR: [401, 'UNAUTHENTICATED', 'Auth error from APNS or Web Push Service', 'THIRD_PARTY_AUTH_ERROR'],
};

function normalizeState(spec, defaultTimes) {
  if (typeof spec === 'string') spec = { state: spec };
  if (!FCM_STATES[spec.state]) throw new Error(`setToken: unknown state ${spec.state}`);
  return {
    state: spec.state,
    // Retry-After: QUOTA_EXCEEDED carries one unless told otherwise; UNAVAILABLE only if given.
    retryAfter: spec.retryAfter !== undefined ? spec.retryAfter : (spec.state === 'QUOTA_EXCEEDED' ? '1' : null),
    times: spec.times ?? defaultTimes,
  };
}

/**
 * Starts the mock on 127.0.0.1.
 *   tls:                  {key, cert} PEM; undefined = plain (see h2c)
 *   h2c:                  plain mode only: 'auto' (default) | true | false
 *   tokenLifetimeSeconds: expires_in of issued access tokens (default 3599)
 *   maxPayloadBytes:      {token: 4096, topic: 2048}
 *   maxConcurrentStreams: HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default 100)
 *   port:                 0 (default) = any free port
 */
export async function startFcmMock({
  tls, h2c = 'auto', port = 0, tokenLifetimeSeconds = 3599, maxPayloadBytes = {},
  maxConcurrentStreams = 100,
} = {}) {
  const maxPayload = { token: 4096, topic: 2048, ...maxPayloadBytes };
  const accounts = new Map(); // client_email -> {projectId, projectNumber, publicKey, privateKeyId, revoked}
  const accessTokens = new Map(); // token -> {clientEmail, projectId, projectNumber, scopes, expiresAt, expired}
  const scripts = new Map(); // target -> [state spec]
  const received = [];
  const requests = [];
  const exchangeLog = [];
  const conns = connectionTracker();
  const sessions = new Set();
  let origin = '';
  let tokenUri = '';
  let closed = false;
  let messageSeq = 0;

  const handler = (req, res) => {
    route(req, res).catch((err) => {
      sendJson(res, 500, rpcError(500, 'INTERNAL', `mock error: ${err?.message}`));
    });
  };
  const h2settings = { maxConcurrentStreams };
  const servers = [];
  let front;
  if (tls) {
    front = http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true, settings: h2settings }, handler);
    servers.push(front);
  } else if (h2c === true) {
    front = http2.createServer({ settings: h2settings }, handler);
    servers.push(front);
  } else if (h2c === false) {
    front = http.createServer(handler);
    servers.push(front);
  } else {
    // One port, both protocols: look at the first bytes, then hand the socket over.
    const h1 = http.createServer(handler);
    const h2 = http2.createServer({ settings: h2settings }, handler);
    servers.push(h1, h2);
    front = net.createServer((socket) => {
      let buf = Buffer.alloc(0);
      const onData = (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        const n = Math.min(buf.length, PREFACE.length);
        const isH2 = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
        if (isH2 && buf.length < PREFACE.length) return; // could still be either
        socket.off('data', onData);
        socket.pause();
        socket.unshift(buf);
        if (closed) { socket.destroy(); return; }
        (isH2 ? h2 : h1).emit('connection', socket);
        if (!isH2) socket.resume();
      };
      socket.on('data', onData);
    });
  }
  front.on('connection', (s) => conns.add(s));
  for (const s of servers) {
    s.on('session', (session) => {
      sessions.add(session);
      session.on('close', () => sessions.delete(session));
      session.on('error', () => { /* peer reset */ });
    });
    if (s instanceof http.Server) s.keepAliveTimeout = 60_000;
    s.on('clientError', (_e, socket) => socket.destroy?.());
  }

  function sendJson(res, status, body, headers = {}) {
    if (res.headersSent || res.destroyed || res.writableEnded) return;
    const payload = JSON.stringify(body);
    try {
      const h = { 'content-type': 'application/json; charset=UTF-8', ...headers };
      if (res.stream) {
        // HTTP/2: the stream API, so that END_STREAM rides on the last DATA frame (the
        // compatibility API ends every response with an empty trailers frame).
        res.stream.respond({ ':status': status, ...h });
        res.stream.end(payload);
      } else {
        res.writeHead(status, h);
        res.end(payload);
      }
    } catch { /* the client went away */ }
  }

  async function route(req, res) {
    const path = req.url.split('?')[0];
    const rec = {
      seq: requests.length + 1, method: req.method, path, httpVersion: req.httpVersion,
      connection: conns.idOf(req.socket), headers: Object.fromEntries(Object.entries(req.headers)),
      status: null, at: Date.now(),
    };
    requests.push(rec);
    if (closed) { res.destroy?.(); return; }
    const { body, tooLarge, aborted } = await readBody(req, MAX_REQUEST_BYTES);
    if (aborted) { rec.status = 'aborted'; return; }
    const answer = (status, json, headers) => { rec.status = status; rec.response = json; sendJson(res, status, json, headers); };
    if (tooLarge) {
      answer(413, rpcError(413, 'INVALID_ARGUMENT', `Request payload size exceeds the limit: ${MAX_REQUEST_BYTES} bytes.`));
      return;
    }
    if (path === '/token') {
      rec.kind = 'token';
      tokenEndpoint(req, body, answer);
      return;
    }
    const m = /^\/v1\/projects\/([^/]+)\/messages(?::|%3A)send$/i.exec(path);
    if (!m || req.method !== 'POST') {
      answer(404, rpcError(404, 'NOT_FOUND', 'Method not found.'));
      return;
    }
    rec.kind = 'send';
    send(req, decodeURIComponent(m[1]), body, answer, rec);
  }

  // ------------------------------------------------------------ POST /token
  function tokenEndpoint(req, body, answer) {
    const log = { status: null, clientEmail: null, error: null, accessToken: null, httpVersion: req.httpVersion, at: Date.now() };
    exchangeLog.push(log);
    const oauthError = (error, description, status = 400) => {
      log.status = status;
      log.error = error;
      answer(status, { error, error_description: description });
    };
    if (req.method !== 'POST') return oauthError('invalid_request', 'The token endpoint only accepts POST', 405);
    const ct = String(req.headers['content-type'] ?? '').toLowerCase();
    if (!ct.startsWith('application/x-www-form-urlencoded')) {
      return oauthError('invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const grant = form.get('grant_type');
    if (!grant) return oauthError('invalid_request', 'Missing required parameter: grant_type');
    if (grant !== GRANT_TYPE) return oauthError('unsupported_grant_type', `Invalid grant_type: ${grant}`);
    const assertion = form.get('assertion');
    if (!assertion) return oauthError('invalid_request', 'Missing required parameter: assertion');
    let jwt;
    try {
      jwt = decodeJwt(assertion);
    } catch (e) {
      return oauthError('invalid_grant', `Invalid JWT: ${e.message}`);
    }
    const { header, claims } = jwt;
    log.clientEmail = claims.iss ?? null;
    const account = accounts.get(claims.iss);
    if (!account || account.revoked) return oauthError('invalid_grant', 'Invalid grant: account not found');
    if (header.alg !== 'RS256') return oauthError('invalid_grant', 'Invalid JWT Signature.');
    if (header.kid !== undefined && header.kid !== account.privateKeyId) return oauthError('invalid_grant', 'Invalid JWT Signature.');
    if (!verifyRs256(account.publicKey, jwt.signingInput, jwt.signature)) return oauthError('invalid_grant', 'Invalid JWT Signature.');
    if (claims.aud !== tokenUri) {
      return oauthError('invalid_grant', `Invalid JWT: Failed audience check. The expected value was ${tokenUri}.`);
    }
    const now = nowSeconds();
    const { iat, exp } = claims;
    if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp - iat > 3600 || exp <= iat
      || iat > now + 60 || exp <= now) {
      return oauthError('invalid_grant', SHORT_LIVED);
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/).filter(Boolean) : [];
    if (scopes.length === 0) return oauthError('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    const accessToken = `ya29.mock.${b64url(randomBytes(24))}`;
    accessTokens.set(accessToken, {
      clientEmail: claims.iss, projectId: account.projectId, projectNumber: account.projectNumber, scopes,
      expiresAt: Date.now() + tokenLifetimeSeconds * 1000, expired: false,
    });
    log.status = 200;
    log.accessToken = accessToken;
    answer(200, { access_token: accessToken, expires_in: tokenLifetimeSeconds, token_type: 'Bearer' });
    return undefined;
  }

  // ------------------------------------------------------------ messages:send
  function send(req, project, body, answer, rec) {
    const auth = req.headers.authorization;
    const wwwAuth = { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' };
    if (auth === undefined) {
      return answer(401, rpcError(401, 'UNAUTHENTICATED',
        `Request is missing required authentication credential. ${CRED_HELP}`, [errorInfo('CREDENTIALS_MISSING')]), wwwAuth);
    }
    const am = /^bearer\s+(\S+)$/i.exec(auth.trim());
    const token = am ? accessTokens.get(am[1]) : undefined;
    const account = token ? accounts.get(token.clientEmail) : undefined;
    const expired = token && (token.expired || Date.now() >= token.expiresAt || account?.revoked);
    if (!token || expired) {
      return answer(401, rpcError(401, 'UNAUTHENTICATED', `Request had invalid authentication credentials. ${CRED_HELP}`,
        [errorInfo(token ? 'ACCESS_TOKEN_EXPIRED' : 'ACCESS_TOKEN_TYPE_UNSUPPORTED')]), wwwAuth);
    }
    rec.accessToken = am[1];
    if (!token.scopes.some((s) => FCM_SCOPES.includes(s))) {
      return answer(403, rpcError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.',
        [errorInfo('ACCESS_TOKEN_SCOPE_INSUFFICIENT')]));
    }
    if (project !== token.projectId && project !== token.projectNumber) {
      return answer(403, rpcError(403, 'PERMISSION_DENIED',
        `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
        [errorInfo('IAM_PERMISSION_DENIED')]));
    }

    let parsed;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (e) {
      const description = `Invalid JSON payload received. ${e.message}`;
      return answer(400, rpcError(400, 'INVALID_ARGUMENT', description, [badRequest([{ description }])]));
    }
    const violations = [];
    const request = checkType(SEND_REQUEST, parsed, '', violations);
    if (violations.length) {
      const fieldViolations = violations.map((v) => (v.field ? v : { description: v.description }));
      return answer(400, rpcError(400, 'INVALID_ARGUMENT', violations.map((v) => v.description).join('\n'),
        [badRequest(fieldViolations)]));
    }
    const message = request.message ?? {};
    const rule = fcmRules(message, maxPayload);
    if (rule) {
      const details = rule.json
        ? [badRequest([{ field: rule.field, description: rule.description }])]
        : [fcmDetail('INVALID_ARGUMENT'), badRequest([{ field: rule.field, description: rule.description }])];
      return answer(400, rpcError(400, 'INVALID_ARGUMENT', rule.description, details));
    }
    const validateOnly = request.validate_only === true;
    const target = message.token || message.topic || message.condition;
    rec.target = target;

    const queue = scripts.get(target);
    if (queue && queue.length) {
      const spec = queue[0];
      spec.times -= 1;
      if (spec.times <= 0) queue.shift();
      const [status, rpcStatus, text, errorCode] = FCM_STATES[spec.state];
      const details = [fcmDetail(errorCode)];
      if (spec.state === 'INVALID' || spec.state === 'INVALID_ARGUMENT') {
        details.push(badRequest([{ field: 'message.token', description: INVALID_TOKEN_TEXT }]));
      }
      rec.scripted = spec.state;
      return answer(status, rpcError(status, rpcStatus, text, details),
        spec.retryAfter !== null ? { 'retry-after': String(spec.retryAfter) } : {});
    }

    messageSeq += 1;
    const name = `projects/${project}/messages/0:${Date.now()}${String(messageSeq).padStart(6, '0')}%${randomBytes(8).toString('hex')}`;
    received.push({
      token: message.token ?? null,
      topic: message.topic ?? null,
      condition: message.condition ?? null,
      message: parsed.message,
      validateOnly,
      accessToken: am[1],
      clientEmail: token.clientEmail,
      project,
      name,
      connection: rec.connection,
      httpVersion: req.httpVersion,
      at: Date.now(),
    });
    return answer(200, { name });
  }

  const listenPort = await listenLoopback(front, port);
  origin = `${tls ? 'https' : 'http'}://127.0.0.1:${listenPort}`;
  tokenUri = `${origin}/token`;

  return {
    origin,
    port: listenPort,
    tokenUri,
    server: front,
    /** Accepted sends (validate-only ones too, flagged): {token, topic, condition, message, validateOnly, accessToken, clientEmail, project, name, connection, httpVersion, at}. */
    received,
    /** Accepted sends that were not validate_only. */
    get delivered() { return received.filter((r) => !r.validateOnly); },
    /** Every request (token and send) with its status. */
    requests,
    /** Every POST /token: {status, clientEmail, error, accessToken, httpVersion, at}. */
    exchangeLog,
    /** POST /token requests so far (any outcome). */
    get exchanges() { return exchangeLog.length; },
    /** TCP connections accepted so far. */
    get connections() { return conns.count; },

    /**
     * Makes and registers a service account. Returns {json (the key file text
     * exactly as Google issues it), account (parsed), publicKeyPem,
     * privateKeyPem, clientEmail, projectId, projectNumber, privateKeyId}.
     * privateKeyPem (PKCS#8) may be passed in to skip RSA key generation.
     */
    makeServiceAccount({ projectId = 'demo-proj', clientEmail, privateKeyPem, projectNumber } = {}) {
      let priv = privateKeyPem;
      if (!priv) {
        priv = generateKeyPairSync('rsa', {
          modulusLength: 2048,
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
          publicKeyEncoding: { type: 'spki', format: 'pem' },
        }).privateKey;
      }
      const publicKeyPem = createPublicKey(priv).export({ type: 'spki', format: 'pem' });
      const email = clientEmail ?? `firebase-adminsdk-${randomBytes(3).toString('hex').slice(0, 5)}@${projectId}.iam.gserviceaccount.com`;
      const number = projectNumber ?? String(randomInt(100_000_000_000, 999_999_999_999));
      const privateKeyId = randomBytes(20).toString('hex');
      const account = {
        type: 'service_account',
        project_id: projectId,
        private_key_id: privateKeyId,
        private_key: priv,
        client_email: email,
        client_id: String(randomInt(100_000_000_000, 999_999_999_999)) + String(randomInt(100_000_000, 999_999_999)),
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: tokenUri,
        auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
        client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
        universe_domain: 'googleapis.com',
      };
      accounts.set(email, {
        projectId, projectNumber: number, publicKey: createPublicKey(publicKeyPem), privateKeyId, revoked: false,
      });
      return {
        json: `${JSON.stringify(account, null, 2)}\n`, account, publicKeyPem, privateKeyPem: priv,
        clientEmail: email, projectId, projectNumber: number, privateKeyId,
      };
    },

    /** Later exchanges for this account fail (invalid_grant) and its access tokens answer 401. */
    revokeAccount(clientEmail) {
      const a = accounts.get(clientEmail);
      if (!a) throw new Error(`revokeAccount: unknown account ${clientEmail}`);
      a.revoked = true;
    },

    /** Every access token issued so far answers 401 UNAUTHENTICATED from now on. */
    expireAccessTokens() {
      for (const t of accessTokens.values()) t.expired = true;
    },

    /**
     * Scripts answers for a target (message.token, or the topic / condition
     * string), used after a request passed validation (validate_only too):
     *   'UNREGISTERED' | 'INVALID' | 'SENDER_ID_MISMATCH' | 'QUOTA_EXCEEDED' |
     *   'UNAVAILABLE' | 'INTERNAL' | 'THIRD_PARTY_AUTH_ERROR'
     *   or {state, retryAfter?, times?}  (default: always; QUOTA_EXCEEDED has
     *   Retry-After 1 unless retryAfter says otherwise, null = none)
     *   [spec, ...] -> each once (unless it sets times), then normal; null clears.
     */
    setToken(target, spec) {
      if (spec === null || spec === undefined) { scripts.delete(target); return; }
      scripts.set(target, Array.isArray(spec) ? spec.map((s) => normalizeState(s, 1)) : [normalizeState(spec, Infinity)]);
    },

    forToken(token) { return received.filter((r) => r.token === token); },

    /** Stops listening and ends every connection. */
    async close() {
      if (closed) return;
      closed = true;
      const done = closeServer(front);
      for (const s of sessions) s.destroy();
      for (const s of servers) s.closeAllConnections?.();
      conns.destroyAll();
      await done;
    },
  };
}
