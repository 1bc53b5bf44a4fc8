// A loopback Pushpad REST API (create notification, project) for Herald's tests.
//
//   const pp = await startPushpadMock({tls: pki.server});   // or {} for plain http
//   ... POST <origin>/api/v1/projects/<projectId>/notifications ...
//   pp.markUnsubscribed('uid-7'); pp.failNext(503, {times: 2});
//   pp.delivered -> [{uid, notificationId, notification}]
//   await pp.close();
//
// As Pushpad (protocols.md §7): `Authorization: Token token="<token>"` (the REST docs' form) or
// `Bearer <token>` (the SDKs' since 2.0), 401 without a valid one; a project of another account
// 403, an unknown one 404; Content-Type application/json; the body flat ({body, title, …, uids})
// or wrapped ({notification: {…}, uids}); `body` required (422 otherwise); 201 {id, scheduled,
// uids} where uids is the subset of the requested uids that have a subscription (every uid has
// one unless marked unsubscribed). Error bodies are {"error": text}. GET /api/v1/projects/<id>
// answers the project.

import { randomBytes } from 'node:crypto';
import { failureScript, isJsonContentType, retryHeaders, startJsonApi } from '../json_api_mock.mjs';

const STRING_FIELDS = ['body', 'title', 'target_url', 'icon_url', 'badge_url', 'image_url', 'custom_data', 'send_at'];
const BOOLEAN_FIELDS = ['require_interaction', 'silent', 'urgent', 'starred'];
const TEXT = {
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found',
  422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function notificationError(n) {
  if (typeof n.body !== 'string' || n.body === '') return 'body can\'t be blank';
  for (const f of STRING_FIELDS) if (n[f] !== undefined && typeof n[f] !== 'string') return `${f} must be a string`;
  for (const f of BOOLEAN_FIELDS) if (n[f] !== undefined && typeof n[f] !== 'boolean') return `${f} must be a boolean`;
  if (n.ttl !== undefined && (!Number.isInteger(n.ttl) || n.ttl < 0)) return 'ttl must be a non-negative integer';
  if (n.actions !== undefined && (!Array.isArray(n.actions) || n.actions.some((a) => !isObject(a) || typeof a.title !== 'string'))) {
    return 'actions must be an array of objects with a title';
  }
  if (n.custom_metrics !== undefined && (!Array.isArray(n.custom_metrics) || n.custom_metrics.length > 3
    || n.custom_metrics.some((x) => typeof x !== 'string'))) {
    return 'custom_metrics must be at most 3 strings';
  }
  return null;
}

/**
 * Starts the mock on 127.0.0.1.
 *   tls:       {key, cert} PEM for https; omitted = plain http
 *   projectId: default 4321; token: the account's API token (default random hex)
 *   otherProjects: project ids that exist but belong to another account (403)
 */
export async function startPushpadMock({ tls, port = 0, projectId = 4321, token, otherProjects = [] } = {}) {
  const authToken = token ?? randomBytes(20).toString('hex');
  const failures = failureScript();
  const unsubscribed = new Set();
  const delivered = [];
  const notifications = [];
  let nextId = 197000;

  const fail = (answer, status, text, headers) => answer(status, { error: text ?? TEXT[status] ?? 'Error' }, headers);

  function authorized(ctx) {
    const header = String(ctx.headers.authorization ?? '').trim();
    const m = /^Token\s+token="((?:[^"\\]|\\.)*)"$/i.exec(header) ?? /^Bearer\s+(\S+)$/i.exec(header);
    const given = m ? m[1].replace(/\\(.)/g, '$1') : undefined;
    if (given !== authToken) { fail(ctx.answer, 401, 'Unauthorized'); return false; }
    ctx.rec.scheme = header.toLowerCase().startsWith('bearer') ? 'Bearer' : 'Token';
    return true;
  }

  function project(ctx, id) {
    if (String(id) === String(projectId)) return true;
    if (otherProjects.map(String).includes(String(id))) fail(ctx.answer, 403, 'Forbidden');
    else fail(ctx.answer, 404, 'Not Found');
    return false;
  }

  function create(ctx, id) {
    const { rec, answer } = ctx;
    rec.kind = 'create';
    if (!authorized(ctx) || !project(ctx, id)) return;
    if (!isJsonContentType(ctx.headers) || ctx.jsonError || !isObject(ctx.json)) {
      fail(answer, 400, 'The request body must be a JSON object');
      return;
    }
    const wrapped = isObject(ctx.json.notification);
    const n = wrapped ? ctx.json.notification : ctx.json;
    rec.shape = wrapped ? 'wrapped' : 'flat';
    const { uids, tags } = ctx.json;
    if (uids !== undefined && (!Array.isArray(uids) || uids.some((u) => typeof u !== 'string'))) {
      fail(answer, 422, 'uids must be an array of strings');
      return;
    }
    if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
      fail(answer, 422, 'tags must be an array of strings');
      return;
    }
    const problem = notificationError(n);
    if (problem) { fail(answer, 422, problem); return; }
    const failure = failures.take();
    if (failure) {
      rec.scripted = failure.status;
      fail(answer, failure.status, undefined, retryHeaders(failure));
      return;
    }
    nextId += 1;
    const notificationId = nextId;
    const reached = uids === undefined ? [] : [...new Set(uids)].filter((u) => !unsubscribed.has(u));
    notifications.push({ id: notificationId, notification: n, uids, tags, shape: rec.shape, at: Date.now() });
    for (const uid of reached) delivered.push({ uid, notificationId, notification: n, at: Date.now() });
    const reply = { id: notificationId, scheduled: reached.length };
    if (n.send_at !== undefined) {
      delete reply.scheduled;
      reply.send_at = n.send_at;
    } else if (uids !== undefined) {
      reply.uids = reached;
    }
    answer(201, reply);
  }

  const api = await startJsonApi({
    tls,
    port,
    route(ctx) {
      let m = /^\/api\/v1\/projects\/([^/]+)\/notifications$/.exec(ctx.path);
      if (m && ctx.method === 'POST') return create(ctx, decodeURIComponent(m[1]));
      m = /^\/api\/v1\/projects\/([^/]+)$/.exec(ctx.path);
      if (m && ctx.method === 'GET') {
        ctx.rec.kind = 'project';
        if (!authorized(ctx) || !project(ctx, decodeURIComponent(m[1]))) return undefined;
        return ctx.answer(200, { id: Number(projectId), name: 'Demo', website: 'https://example.com' });
      }
      return fail(ctx.answer, 404, 'Not Found');
    },
  });

  return {
    origin: api.origin,
    /** What the official SDK takes as baseUrl. */
    apiBase: `${api.origin}/api/v1`,
    port: api.port,
    projectId,
    token: authToken,
    /** Every request: {seq, method, path, headers, json, status, response, kind, scheme, shape, scripted}. */
    requests: api.requests,
    /** Created notifications: {id, notification, uids, tags, shape, at}. */
    notifications,
    /** One entry per uid reached: {uid, notificationId, notification, at}. */
    delivered,
    get connections() { return api.connections; },
    forUid(uid) { return delivered.filter((d) => d.uid === uid); },
    /** These uids have no subscription: left out of the reply's uids, nothing delivered. */
    markUnsubscribed(...uids) { for (const uid of uids) unsubscribed.add(uid); },
    /** The next `times` valid creates answer `status` ({error}; Retry-After if given). */
    failNext(status, opts) { failures.arm(status, opts); },
    close: () => api.close(),
  };
}
