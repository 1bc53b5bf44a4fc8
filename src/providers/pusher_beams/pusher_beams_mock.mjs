// A loopback Pusher Beams publish API for Herald's tests.
//
//   const beams = await startPusherBeamsMock({tls: pki.server});   // or {} for plain http
//   ... POST <origin>/publish_api/v1/instances/<instanceId>/publishes/users ...
//   beams.delivered -> [{user, publishId, body}]; beams.failNext(429, {retryAfter: 1})
//   await beams.close();
//
// As Beams (protocols.md §6): the instance in the path must exist (404 "Instance not found");
// `Authorization: Bearer <secretKey>` (400 "Incomplete Request" without it, 401 "Unauthorized"
// with another key); Content-Type application/json only (400 "Invalid content type"); bodies up
// to 200 KiB for users and 10 KiB for interests (400 "Bad request"); then the schema (422
// "Unprocessable Entity"): `users` 1-1000 non-empty ids of at most 164 bytes UTF-8, or
// `interests` 1-100 names of at most 164 characters from A-Z a-z 0-9 _-=@,.; ; at least one of
// `apns`, `fcm`, `web` (objects); `web.data` without a `pusher` member; `time_to_live` integers
// within four weeks. Success is 200 {"publishId": "pubid-…"}. Error bodies are
// {"error": <title>, "description": <text>}; the official SDK needs both.
//
// Beams reports nothing per user; a user deleted through DELETE /user_api/v1/instances/<id>/
// users/<user> (or removeUser) just receives nothing.

import { randomBytes, randomUUID } from 'node:crypto';
import { failureScript, isJsonContentType, retryHeaders, startJsonApi } from '../json_api_mock.mjs';

const MAX_USERS = 1000;
const MAX_INTERESTS = 100;
const MAX_ID_BYTES = 164;
const MAX_USERS_BODY = 200 * 1024;
const MAX_INTERESTS_BODY = 10 * 1024;
const MAX_TTL = 2_419_200;
const INTEREST = /^[A-Za-z0-9_\-=@,.;]+$/;
const TITLES = {
  400: 'Bad request', 401: 'Unauthorized', 404: 'Instance not found', 422: 'Unprocessable Entity',
  429: 'Rate Limited', 500: 'Something went wrong', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// The schema check of a publish body; an error text or null.
function schemaError(body, kind) {
  const allowed = new Set(['apns', 'fcm', 'web', kind, ...(kind === 'interests' ? ['webhookUrl'] : [])]);
  for (const k of Object.keys(body)) if (!allowed.has(k)) return `unexpected field ${k}`;
  const targets = body[kind];
  if (kind === 'users') {
    if (!Array.isArray(targets) || targets.length < 1 || targets.length > MAX_USERS) {
      return `users must be an array of 1 to ${MAX_USERS} user ids`;
    }
    for (const user of targets) {
      if (typeof user !== 'string' || user === '' || Buffer.byteLength(user) > MAX_ID_BYTES) {
        return `user ids must be non-empty strings of at most ${MAX_ID_BYTES} bytes`;
      }
    }
  } else {
    if (!Array.isArray(targets) || targets.length < 1 || targets.length > MAX_INTERESTS) {
      return `interests must be an array of 1 to ${MAX_INTERESTS} interests`;
    }
    for (const interest of targets) {
      if (typeof interest !== 'string' || interest.length > MAX_ID_BYTES || !INTEREST.test(interest)) {
        return `invalid interest ${JSON.stringify(interest)}`;
      }
    }
  }
  const blocks = ['apns', 'fcm', 'web'].filter((b) => body[b] !== undefined);
  if (blocks.length === 0) return 'the publish must contain at least one of apns, fcm or web';
  for (const b of blocks) if (!isObject(body[b])) return `${b} must be an object`;
  for (const b of ['fcm', 'web']) {
    const ttl = body[b]?.time_to_live;
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL)) {
      return `${b}.time_to_live must be an integer from 0 to ${MAX_TTL}`;
    }
  }
  if (body.web) {
    if (body.web.notification !== undefined && !isObject(body.web.notification)) return 'web.notification must be an object';
    if (body.web.data !== undefined) {
      if (!isObject(body.web.data)) return 'web.data must be an object';
      if (Object.hasOwn(body.web.data, 'pusher')) return 'web.data must not contain the key "pusher"';
    }
  }
  if (body.apns && body.apns.aps !== undefined && !isObject(body.apns.aps)) return 'apns.aps must be an object';
  if (body.fcm && body.fcm.notification !== undefined && !isObject(body.fcm.notification)) return 'fcm.notification must be an object';
  return null;
}

/**
 * Starts the mock on 127.0.0.1.
 *   tls:        {key, cert} PEM for https; omitted = plain http (what the SDK's `endpoint` option speaks)
 *   instanceId: default a random UUID; secretKey: default random hex
 */
export async function startPusherBeamsMock({ tls, port = 0, instanceId = randomUUID(), secretKey } = {}) {
  const secret = secretKey ?? randomBytes(16).toString('hex').toUpperCase();
  const failures = failureScript();
  const removed = new Set();
  const delivered = [];
  const publishes = [];

  const fail = (answer, status, error, description, headers) => answer(status, { error, description }, headers);

  function authorized(ctx, instance) {
    if (instance !== instanceId) { fail(ctx.answer, 404, 'Instance not found', 'Could not find the instance'); return false; }
    const header = ctx.headers.authorization;
    if (header === undefined) { fail(ctx.answer, 400, 'Incomplete Request', 'Authorization header is missing'); return false; }
    const m = /^Bearer\s+(\S+)$/i.exec(String(header).trim());
    if (!m || m[1] !== secret) { fail(ctx.answer, 401, 'Unauthorized', 'Incorrect API Key'); return false; }
    return true;
  }

  function publish(ctx, instance, kind) {
    const { rec, answer } = ctx;
    rec.kind = kind;
    if (!authorized(ctx, instance)) return;
    if (!isJsonContentType(ctx.headers)) {
      fail(answer, 400, 'Invalid content type', 'Only application/json is supported');
      return;
    }
    const limit = kind === 'users' ? MAX_USERS_BODY : MAX_INTERESTS_BODY;
    if (ctx.tooLarge || ctx.body.length > limit) {
      fail(answer, 400, 'Bad request', `Request body must be at most ${limit / 1024} KiB`);
      return;
    }
    if (ctx.jsonError || !isObject(ctx.json)) {
      fail(answer, 400, 'Bad request', 'The request body must be a JSON object');
      return;
    }
    const problem = schemaError(ctx.json, kind);
    if (problem) { fail(answer, 422, 'Unprocessable Entity', problem); return; }
    const failure = failures.take();
    if (failure) {
      rec.scripted = failure.status;
      fail(answer, failure.status, TITLES[failure.status] ?? 'Error', 'scripted by the test',
        retryHeaders(failure));
      return;
    }
    const publishId = `pubid-${randomUUID()}`;
    const targets = ctx.json[kind];
    publishes.push({ publishId, kind, targets, body: ctx.json, at: Date.now() });
    if (kind === 'users') {
      for (const user of targets) {
        if (!removed.has(user)) delivered.push({ user, publishId, body: ctx.json, at: Date.now() });
      }
    }
    rec.publishId = publishId;
    answer(200, { publishId });
  }

  const api = await startJsonApi({
    tls,
    port,
    maxBody: MAX_USERS_BODY + 1,
    route(ctx) {
      let m = /^\/publish_api\/v1\/instances\/([^/]+)\/publishes\/(users|interests)$/.exec(ctx.path);
      if (m && ctx.method === 'POST') return publish(ctx, decodeURIComponent(m[1]), m[2]);
      m = /^\/(?:user|customer)_api\/v1\/instances\/([^/]+)\/users\/([^/]+)$/.exec(ctx.path);
      if (m && ctx.method === 'DELETE') {
        ctx.rec.kind = 'delete-user';
        if (!authorized(ctx, decodeURIComponent(m[1]))) return undefined;
        removed.add(decodeURIComponent(m[2]));
        return ctx.answer(200, undefined);
      }
      return fail(ctx.answer, 404, 'Not Found', `No route for ${ctx.method} ${ctx.path}`);
    },
  });

  return {
    origin: api.origin,
    port: api.port,
    instanceId,
    secretKey: secret,
    /** Every request: {seq, method, path, headers, json, status, response, kind, publishId, scripted}. */
    requests: api.requests,
    /** Accepted publishes: {publishId, kind, targets, body, at}. */
    publishes,
    /** One entry per user reached: {user, publishId, body, at}. */
    delivered,
    get connections() { return api.connections; },
    forUser(user) { return delivered.filter((d) => d.user === user); },
    /** The user has no devices any more: publishes to it succeed and reach nothing. */
    removeUser(user) { removed.add(user); },
    /** The next `times` valid publishes answer `status` ({error, description}; Retry-After if given). */
    failNext(status, opts) { failures.arm(status, opts); },
    close: () => api.close(),
  };
}
