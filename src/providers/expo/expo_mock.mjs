// A loopback Expo Push Service (protocols.md §4) for Herald's end-to-end tests and benchmark.
//
//   const expo = await startExpoMock({tls: pki.server});       // or plain HTTP/1.1 without tls
//   expo.setToken('ExponentPushToken[gone]', 'DeviceNotRegistered');        // an error ticket
//   expo.setToken('ExponentPushToken[late]', {receipt: 'DeviceNotRegistered'});  // ok, then not
//   expo.requireAccessToken('secret');                          // enhanced push security on
//   expo.failNextSends(1, {status: 429, code: 'TOO_MANY_REQUESTS', retryAfter: '1'});
//   ... POST <origin>/--/api/v2/push/send, POST <origin>/--/api/v2/push/getReceipts ...
//   expo.delivered[0].message, expo.receiptChecks
//   await expo.close();
//
// Like Expo: request bodies may be gzip- or deflate-compressed (Content-Encoding); a body is one
// message or an array, at most 100 recipients (400 PUSH_TOO_MANY_NOTIFICATIONS), all of one Expo
// project (400 PUSH_TOO_MANY_EXPERIENCE_IDS with details {project: [tokens]}); the fields Expo
// types are checked (400 VALIDATION_ERROR for the whole request); then one ticket per recipient in
// order: an error ticket for a token that is not an Expo push token (details.error
// DeviceNotRegistered, message '"<to>" is not a valid Expo push token' [M]: Expo documents the
// text, not the type), for a dead token (DeviceNotRegistered, with details.expoPushToken), for a
// message over 4096 bytes (MessageTooBig) and for scripted errors; otherwise ok with a receipt id,
// whose receipt appears receiptDelayMs later. A single message with a single recipient is answered
// with a single ticket object, not an array (Expo's quirk). getReceipts takes {ids: [...]}, at
// most 1000 (400 PUSH_TOO_MANY_RECEIPTS), and answers {data: {id: receipt}} for the receipts that
// exist by then. Errors are {"errors": [{code, message, isTransient}]}. With an access token
// configured, a request with another token gets 401 UNAUTHORIZED, and so does one without a token
// while the token is required. Replies over 1 KiB go gzip-compressed when the client accepts it.
//
// Transport: with tls, HTTP/2 (ALPN h2) and HTTP/1.1 on one port; without, HTTP/1.1.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import { gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import {
  closeServer, connectionTracker, isPlainObject, listenLoopback, readBody,
} from '../../../test/e2e/mock_support.mjs';

const SEND_PATH = '/--/api/v2/push/send';
const RECEIPTS_PATH = '/--/api/v2/push/getReceipts';
const MAX_REQUEST_BYTES = 5 * 1024 * 1024;
const MAX_INFLATED_BYTES = 20 * 1024 * 1024;
const COMPRESS_ABOVE = 1024;

/** Every details.error value Expo documents (protocols.md §4.6). */
export const EXPO_ERRORS = ['DeviceNotRegistered', 'MessageTooBig', 'MessageRateExceeded', 'MismatchSenderId',
  'InvalidCredentials', 'ProviderError', 'ExpoError', 'DeveloperError'];

const ERROR_TEXT = {
  DeviceNotRegistered: (to) => `"${to}" is not a registered push notification recipient`,
  MessageTooBig: () => 'Message too big',
  MessageRateExceeded: () => 'Message rate exceeded for this device',
  MismatchSenderId: () => 'The FCM server credentials do not match the sender id of the app',
  InvalidCredentials: () => 'Could not find APNs credentials for this app',
  ProviderError: () => 'The push provider returned an error',
  ExpoError: () => 'Internal error in the Expo push service',
  DeveloperError: () => 'The request is invalid',
};

/** Expo's own token check (expo-server-sdk's isExpoPushToken). */
export function isExpoPushToken(token) {
  return typeof token === 'string'
    && (((token.startsWith('ExponentPushToken[') || token.startsWith('ExpoPushToken[')) && token.endsWith(']'))
      || /^[a-z\d]{8}-[a-z\d]{4}-[a-z\d]{4}-[a-z\d]{4}-[a-z\d]{12}$/i.test(token));
}

// Types of the message fields Expo validates; the others are ignored.
const FIELD_CHECKS = {
  title: (v) => typeof v === 'string',
  body: (v) => typeof v === 'string',
  subtitle: (v) => typeof v === 'string',
  data: (v) => isPlainObject(v),
  sound: (v) => typeof v === 'string' || isPlainObject(v),
  badge: (v) => typeof v === 'number' && v >= 0,
  ttl: (v) => typeof v === 'number' && v >= 0,
  expiration: (v) => typeof v === 'number' && v >= 0,
  priority: (v) => ['default', 'normal', 'high'].includes(v),
  interruptionLevel: (v) => ['active', 'critical', 'passive', 'time-sensitive'].includes(v),
  channelId: (v) => typeof v === 'string',
  categoryId: (v) => typeof v === 'string',
  icon: (v) => typeof v === 'string',
  collapseId: (v) => typeof v === 'string',
  tag: (v) => typeof v === 'string',
  mutableContent: (v) => typeof v === 'boolean',
  _contentAvailable: (v) => typeof v === 'boolean',
  richContent: (v) => isPlainObject(v),
};

const errorsBody = (code, message, extra = {}) => ({ errors: [{ code, message, isTransient: false, ...extra }] });

function normalizeSpec(spec, defaultTimes) {
  if (typeof spec === 'string') spec = { ticket: spec };
  for (const code of [spec.ticket, spec.receipt]) {
    if (code !== undefined && !EXPO_ERRORS.includes(code)) throw new Error(`setToken: unknown Expo error ${code}`);
  }
  return { ticket: spec.ticket, receipt: spec.receipt, times: spec.times ?? defaultTimes };
}

/**
 * Starts the mock on 127.0.0.1.
 *   tls:               {key, cert} PEM; undefined = plain HTTP/1.1
 *   receiptDelayMs:    how long after the ticket its receipt appears (default 0)
 *   compressResponses: gzip replies over 1 KiB for clients that accept it (default true)
 *   maxMessages:       recipients per send (100); maxReceipts: ids per getReceipts (1000)
 *   maxMessageBytes:   a message's JSON size above which its ticket is MessageTooBig (4096)
 *   port:              0 (default) = any free port
 */
export async function startExpoMock({
  tls, port = 0, receiptDelayMs = 0, compressResponses = true, maxMessages = 100, maxReceipts = 1000,
  maxMessageBytes = 4096,
} = {}) {
  const requests = [];
  const tickets = [];        // every recipient's ticket: {token, message, ticket, ...}
  const received = [];       // messages accepted with an ok ticket
  const receipts = new Map(); // receipt id -> {readyAt, receipt, token}
  const receiptLog = [];     // every getReceipts: {ids, answered, at}
  const scripts = new Map(); // token -> [spec]
  const projects = new Map(); // token -> Expo project ("@owner/slug")
  const failures = { send: [], receipts: [] };
  const conns = connectionTracker();
  const sessions = new Set();
  let delayMs = receiptDelayMs;
  let accessToken = null;
  let tokenRequired = false;
  let closed = false;

  const handler = (req, res) => {
    route(req, res).catch((err) => {
      reply(req, res, 500, errorsBody('INTERNAL_SERVER_ERROR', `mock error: ${err?.message}`, { isTransient: true }));
    });
  };
  const server = tls
    ? http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true }, handler)
    : http.createServer(handler);
  server.on('connection', (s) => conns.add(s));
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => { /* peer reset */ });
  });
  if (server instanceof http.Server) server.keepAliveTimeout = 60_000;
  server.on('clientError', (_e, socket) => socket.destroy?.());

  function reply(req, res, status, json, headers = {}) {
    if (res.headersSent || res.destroyed || res.writableEnded) return;
    let payload = Buffer.from(JSON.stringify(json));
    const h = { 'content-type': 'application/json; charset=utf-8', ...headers };
    if (compressResponses && payload.length > COMPRESS_ABOVE && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      payload = gzipSync(payload);
      h['content-encoding'] = 'gzip';
    }
    try {
      if (res.stream) {
        res.stream.respond({ ':status': status, ...h });
        res.stream.end(payload);
      } else {
        res.writeHead(status, h);
        res.end(payload);
      }
    } catch { /* the client went away */ }
  }

  // The request body as text: decompressed as Content-Encoding says.
  function decode(body, encoding) {
    const e = String(encoding ?? '').trim().toLowerCase();
    if (e === '' || e === 'identity') return body.toString('utf8');
    if (e === 'gzip' || e === 'x-gzip') return gunzipSync(body, { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8');
    if (e === 'deflate') return inflateSync(body, { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8');
    throw Object.assign(new Error(`unsupported Content-Encoding ${e}`), { unsupported: true });
  }

  async function route(req, res) {
    const path = req.url.split('?')[0];
    const rec = {
      seq: requests.length + 1, method: req.method, path, httpVersion: req.httpVersion,
      connection: conns.idOf(req.socket), headers: { ...req.headers }, status: null, at: Date.now(),
    };
    requests.push(rec);
    if (closed) { res.destroy?.(); return; }
    const { body, tooLarge, aborted } = await readBody(req, MAX_REQUEST_BYTES);
    if (aborted) { rec.status = 'aborted'; return; }
    const answer = (status, json, headers) => { rec.status = status; rec.response = json; reply(req, res, status, json, headers); };
    const kind = path === SEND_PATH ? 'send' : path === RECEIPTS_PATH ? 'receipts' : null;
    rec.kind = kind;
    if (!kind) return answer(404, errorsBody('NOT_FOUND', `Not found: ${path}`));
    if (req.method !== 'POST') return answer(405, errorsBody('METHOD_NOT_ALLOWED', 'Use POST'));
    if (tooLarge) return answer(413, errorsBody('PAYLOAD_TOO_LARGE', 'The request body is too large'));

    const auth = req.headers.authorization;
    const given = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth.trim())?.[1] : undefined;
    rec.accessToken = given ?? null;
    if (accessToken !== null && (given !== undefined ? given !== accessToken : tokenRequired)) {
      return answer(401, errorsBody('UNAUTHORIZED', given === undefined
        ? 'The project requires an access token (enhanced push security is enabled).'
        : 'The bearer token is invalid.'));
    }
    const failure = failures[kind][0];
    if (failure) {
      failure.times -= 1;
      if (failure.times <= 0) failures[kind].shift();
      rec.scripted = failure.code ?? failure.status;
      const extra = failure.status === 429 || failure.status >= 500 ? { isTransient: true } : {};
      return answer(failure.status, errorsBody(failure.code ?? `HTTP_${failure.status}`, 'Scripted failure', extra),
        failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : {});
    }

    let text;
    try {
      text = decode(body, req.headers['content-encoding']);
    } catch (e) {
      return answer(e.unsupported ? 415 : 400, errorsBody('API_ERROR', `Could not read the request body: ${e.message}`));
    }
    rec.compressed = String(req.headers['content-encoding'] ?? '') !== '';
    rec.bytes = body.length;
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return answer(400, errorsBody('VALIDATION_ERROR', `Invalid JSON: ${e.message}`));
    }
    return kind === 'send' ? send(parsed, answer, rec) : getReceipts(parsed, answer);
  }

  // ------------------------------------------------------------ POST /push/send
  function send(parsed, answer, rec) {
    const single = !Array.isArray(parsed);
    const messages = single ? [parsed] : parsed;
    for (const [i, m] of messages.entries()) {
      const at = single ? '' : `[${i}]`;
      if (!isPlainObject(m)) return answer(400, errorsBody('VALIDATION_ERROR', `"${at || 'value'}" must be of type object`));
      const to = m.to;
      if (!(typeof to === 'string' || (Array.isArray(to) && to.length > 0 && to.every((t) => typeof t === 'string')))) {
        return answer(400, errorsBody('VALIDATION_ERROR', `"${at}${at ? '.' : ''}to" is required and must be a string or an array of strings`));
      }
      for (const [field, ok] of Object.entries(FIELD_CHECKS)) {
        if (m[field] !== undefined && m[field] !== null && !ok(m[field])) {
          return answer(400, errorsBody('VALIDATION_ERROR', `"${at}${at ? '.' : ''}${field}" has an invalid value`));
        }
      }
    }
    const recipients = messages.flatMap((m) => [].concat(m.to).map((to) => ({ to, message: m })));
    rec.messages = recipients.length;
    if (recipients.length > maxMessages) {
      return answer(400, errorsBody('PUSH_TOO_MANY_NOTIFICATIONS',
        `You are trying to send more than ${maxMessages} push notifications in one request.`));
    }
    const byProject = {};
    for (const { to } of recipients) {
      if (!isExpoPushToken(to)) continue;
      const project = projects.get(to) ?? '@herald/default';
      (byProject[project] ??= []).push(to);
    }
    if (Object.keys(byProject).length > 1) {
      return answer(400, errorsBody('PUSH_TOO_MANY_EXPERIENCE_IDS',
        'All push notification messages in the same request must be for the same project.', { details: byProject }));
    }
    const now = Date.now();
    const out = recipients.map(({ to, message }) => {
      const ticket = ticketFor(to, message, now);
      const entry = {
        token: to, message, ticket, connection: rec.connection, httpVersion: rec.httpVersion,
        accessToken: rec.accessToken, compressed: rec.compressed, at: now,
      };
      tickets.push(entry);
      if (ticket.status === 'ok') received.push(entry);
      return ticket;
    });
    return answer(200, { data: single && recipients.length === 1 ? out[0] : out });
  }

  function ticketFor(to, message, now) {
    if (!isExpoPushToken(to)) {
      return { status: 'error', message: `"${to}" is not a valid Expo push token`, details: { error: 'DeviceNotRegistered' } };
    }
    const queue = scripts.get(to);
    let spec = null;
    if (queue && queue.length) {
      spec = queue[0];
      spec.times -= 1;
      if (spec.times <= 0) queue.shift();
    }
    const error = (code) => ({
      status: 'error', message: ERROR_TEXT[code](to),
      details: code === 'DeviceNotRegistered' ? { error: code, expoPushToken: to } : { error: code },
    });
    if (spec?.ticket) return error(spec.ticket);
    const size = Buffer.byteLength(JSON.stringify({ ...message, to }));
    if (size > maxMessageBytes) return error('MessageTooBig');
    const id = randomUUID();
    const receipt = spec?.receipt
      ? { status: 'error', message: ERROR_TEXT[spec.receipt](to), details: spec.receipt === 'DeviceNotRegistered' ? { error: spec.receipt, expoPushToken: to } : { error: spec.receipt } }
      : { status: 'ok' };
    receipts.set(id, { readyAt: now + delayMs, receipt, token: to });
    return { status: 'ok', id };
  }

  // ------------------------------------------------------------ POST /push/getReceipts
  function getReceipts(parsed, answer) {
    const ids = parsed?.ids;
    if (!isPlainObject(parsed) || !Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
      return answer(400, errorsBody('VALIDATION_ERROR', '"ids" is required and must be an array of strings'));
    }
    if (ids.length > maxReceipts) {
      return answer(400, errorsBody('PUSH_TOO_MANY_RECEIPTS',
        `You are trying to get more than ${maxReceipts} push receipts in one request.`));
    }
    const now = Date.now();
    const data = {};
    for (const id of ids) {
      const r = receipts.get(id);
      if (r && now >= r.readyAt) data[id] = r.receipt;
    }
    receiptLog.push({ ids, answered: Object.keys(data), at: now });
    return answer(200, { data });
  }

  const listenPort = await listenLoopback(server, port);
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${listenPort}`;

  return {
    origin,
    port: listenPort,
    server,
    /** Every request: {seq, method, path, kind ('send'|'receipts'), httpVersion, connection, headers, status, response, ...}. */
    requests,
    /** Send requests so far (any outcome). */
    get sends() { return requests.filter((r) => r.kind === 'send'); },
    /** Every recipient's ticket: {token, message, ticket, connection, httpVersion, accessToken, compressed, at}. */
    tickets,
    /** Recipients accepted with an ok ticket (same entries as tickets). */
    received,
    get delivered() { return received; },
    /** Every getReceipts request: {ids, answered, at}. */
    receiptChecks: receiptLog,
    /** TCP connections accepted so far. */
    get connections() { return conns.count; },

    forToken(token) { return received.filter((r) => r.token === token); },

    /**
     * Scripts a token: 'DeviceNotRegistered' (an error ticket, every time), or
     * {ticket: code} / {receipt: code} (ok ticket, error receipt), with times
     * (default: always); an array of specs -> each once (unless it sets
     * times), then normal; null clears.
     */
    setToken(token, spec) {
      if (spec === null || spec === undefined) { scripts.delete(token); return; }
      scripts.set(token, Array.isArray(spec) ? spec.map((s) => normalizeSpec(s, 1)) : [normalizeSpec(spec, Infinity)]);
    },
    /** Puts a token in another Expo project (default '@herald/default'). */
    setProject(token, project) { projects.set(token, project); },
    /** The access token of the project; required: requests without one are refused too. null: off. */
    requireAccessToken(token, { required = true } = {}) {
      accessToken = token;
      tokenRequired = token !== null && required;
    },
    /** The next `times` send requests fail as a whole: {status, code, retryAfter}. */
    failNextSends(times, { status = 503, code, retryAfter } = {}) {
      failures.send.push({ times, status, code, retryAfter });
    },
    /** The next `times` getReceipts requests fail as a whole. */
    failNextReceiptChecks(times, { status = 503, code, retryAfter } = {}) {
      failures.receipts.push({ times, status, code, retryAfter });
    },
    /** Receipts of later tickets appear this long after them. */
    setReceiptDelay(ms) { delayMs = ms; },

    /** Stops listening and ends every connection. */
    async close() {
      if (closed) return;
      closed = true;
      const done = closeServer(server);
      for (const s of sessions) s.destroy();
      server.closeAllConnections?.();
      conns.destroyAll();
      await done;
    },
  };
}
