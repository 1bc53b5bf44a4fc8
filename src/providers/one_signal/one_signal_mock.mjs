// A loopback OneSignal REST API (create notification, view notifications) for Herald's tests.
//
//   const os = await startOneSignalMock({tls: pki.server});   // or {} for plain http
//   ... POST <origin>/api/v1/notifications (legacy, Basic) or <origin>/notifications (Key) ...
//   os.markInvalid('player-9'); os.failNext(503, {times: 1, afterDelivery: true});
//   os.delivered  -> [{token, notificationId, mode, idempotencyKey, body}]
//   await os.close();
//
// As OneSignal (protocols.md §5): `Authorization: Basic <key>` or `Key <key>` (scheme in any
// case; 401 without one, 403 with a wrong one); Content-Type application/json; app_id must be
// the app's; exactly one targeting mode (include_player_ids, include_subscription_ids,
// include_aliases with target_channel, include_external_user_ids, included_segments, filters);
// at most 2,000 ids; `contents.en` required unless content_available or template_id; `data` at
// most 2048 bytes; idempotency_key a UUID, and a repeat within the app answers the first result
// with `Idempotent-Replayed: true` and delivers nothing. Replies: 200 {id, external_id, errors?}
// where errors lists the invalid ids ({invalid_player_ids}, {invalid_aliases: {external_id}},
// {invalid_external_user_ids}); when no targeted id can receive it, {id: "", errors: ["All
// included players are not subscribed"]}. Error bodies are {"errors": [text]}.

import { randomBytes, randomUUID } from 'node:crypto';
import { failureScript, isJsonContentType, retryHeaders, startJsonApi } from '../json_api_mock.mjs';

const MAX_IDS = 2000;
const MAX_DATA = 2048;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DENIED = "Access denied.  Please include an 'Authorization: ...' header with a valid API key "
  + '(https://documentation.onesignal.com/docs/en/keys-and-ids#api-keys).';
const NO_APP = 'app_id not found. You may be missing a Content-Type: application/json header.';
const NOT_SUBSCRIBED = 'All included players are not subscribed';
const TARGETING = ['include_player_ids', 'include_subscription_ids', 'include_aliases',
  'include_external_user_ids', 'included_segments', 'filters'];
const BADGE_TYPES = new Set(['None', 'SetTo', 'Increase']);
const SCRIPTED_TEXT = {
  429: 'API rate limit exceeded.', 500: 'Internal Server Error', 502: 'Bad Gateway',
  503: 'Service temporarily unavailable', 400: 'Bad request', 401: DENIED, 403: DENIED,
};

/**
 * Starts the mock on 127.0.0.1.
 *   tls:    {key, cert} PEM for https; omitted = plain http
 *   appId:  the app's id (default: a random UUID); apiKey: its key (default: random os_v2_app_…)
 */
export async function startOneSignalMock({ tls, port = 0, appId = randomUUID(), apiKey } = {}) {
  const key = apiKey ?? `os_v2_app_${randomBytes(16).toString('hex')}`;
  const invalid = new Set();
  const unsubscribed = new Set();
  const failures = failureScript();
  const delivered = [];
  const notifications = [];
  const idempotent = new Map(); // key -> {status, body}
  let replays = 0;

  const errors = (answer, status, text, headers) => answer(status, { errors: [text] }, headers);

  function authorized(ctx) {
    const header = ctx.headers.authorization;
    if (header === undefined) { errors(ctx.answer, 401, DENIED); return false; }
    const m = /^(basic|key)\s+(\S+)$/i.exec(String(header).trim());
    if (!m || m[2] !== key) { errors(ctx.answer, 403, DENIED); return false; }
    ctx.rec.scheme = m[1].toLowerCase() === 'key' ? 'Key' : 'Basic';
    return true;
  }

  // The request's targets: {mode, ids, invalidList (how the reply names invalid ones)} or an error text.
  function targets(n) {
    const modes = TARGETING.filter((k) => n[k] !== undefined && n[k] !== null);
    if (modes.length === 0) {
      return 'You must include which players, segments, or tags you wish to send this notification to.';
    }
    if (modes.length > 1) return `Only one targeting mode may be used; got ${modes.join(', ')}`;
    const mode = modes[0];
    if (mode === 'included_segments' || mode === 'filters') {
      return Array.isArray(n[mode]) ? { mode, ids: [] } : `${mode} must be an array`;
    }
    let ids;
    let invalidList;
    if (mode === 'include_aliases') {
      const aliases = n.include_aliases;
      if (typeof aliases !== 'object' || Array.isArray(aliases)) return 'include_aliases must be an object';
      const labels = Object.keys(aliases);
      if (labels.length !== 1 || labels[0] !== 'external_id') return 'include_aliases takes one label: external_id';
      if (!['push', 'email', 'sms'].includes(n.target_channel)) {
        return 'target_channel must be one of push, email, sms when include_aliases is used';
      }
      ids = aliases.external_id;
      invalidList = (list) => ({ invalid_aliases: { external_id: list } });
    } else {
      ids = n[mode];
      invalidList = mode === 'include_external_user_ids'
        ? (list) => ({ invalid_external_user_ids: list })
        : (list) => ({ invalid_player_ids: list });
    }
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string' || id === '')) {
      return `${mode} must be a non-empty array of strings`;
    }
    if (ids.length > MAX_IDS) return `You may only target up to ${MAX_IDS} recipients per request; got ${ids.length}`;
    return { mode, ids, invalidList };
  }

  function contentError(n) {
    if (n.content_available === true || typeof n.template_id === 'string') return null;
    if (n.contents === undefined || n.contents === null) return 'Notification content must not be null for any languages.';
    if (typeof n.contents !== 'object' || Array.isArray(n.contents) || typeof n.contents.en !== 'string') {
      return 'Message Notifications must have English language content';
    }
    for (const field of ['headings', 'subtitle']) {
      if (n[field] !== undefined && (typeof n[field] !== 'object' || Array.isArray(n[field]))) {
        return `${field} must be an object of language codes`;
      }
    }
    if (n.data !== undefined && n.data !== null) {
      if (typeof n.data !== 'object' || Array.isArray(n.data)) return 'data must be an object';
      if (Buffer.byteLength(JSON.stringify(n.data)) > MAX_DATA) return `data must be at most ${MAX_DATA} bytes`;
    }
    if (n.ios_badgeType !== undefined && !BADGE_TYPES.has(n.ios_badgeType)) return 'ios_badgeType must be None, SetTo or Increase';
    if (n.ios_badgeCount !== undefined && !Number.isInteger(n.ios_badgeCount)) return 'ios_badgeCount must be an integer';
    return null;
  }

  function create(ctx) {
    const { rec, answer } = ctx;
    rec.kind = 'create';
    if (!authorized(ctx)) return;
    if (!isJsonContentType(ctx.headers) || ctx.jsonError || typeof ctx.json !== 'object' || ctx.json === null
      || Array.isArray(ctx.json)) {
      errors(answer, 400, NO_APP);
      return;
    }
    const n = ctx.json;
    if (n.app_id !== appId) { errors(answer, 400, NO_APP); return; }
    const idem = n.idempotency_key;
    if (idem !== undefined && (typeof idem !== 'string' || !UUID.test(idem))) {
      errors(answer, 400, 'idempotency_key must be a UUID');
      return;
    }
    rec.idempotencyKey = idem;
    if (idem && idempotent.has(idem)) {
      replays += 1;
      rec.replayed = true;
      const first = idempotent.get(idem);
      answer(first.status, first.body, { 'idempotent-replayed': 'true' });
      return;
    }
    const target = targets(n);
    if (typeof target === 'string') { errors(answer, 400, target); return; }
    const bad = contentError(n);
    if (bad) { errors(answer, 400, bad); return; }
    const failure = failures.peek();
    if (failure && !failure.afterDelivery) {
      failures.take();
      rec.scripted = failure.status;
      const text = SCRIPTED_TEXT[failure.status] ?? 'Error';
      const body = failure.body ?? (failure.status === 429 ? { errors: [text], limit: 'create_message' } : { errors: [text] });
      answer(failure.status, body, retryHeaders(failure));
      return;
    }

    const listedInvalid = target.ids.filter((id) => invalid.has(id));
    const reachable = target.ids.filter((id) => !invalid.has(id) && !unsubscribed.has(id));
    let body;
    if (target.ids.length && reachable.length === 0) {
      body = { id: '', errors: [NOT_SUBSCRIBED] };
    } else {
      const id = randomUUID();
      body = { id, external_id: null };
      if (listedInvalid.length) body.errors = target.invalidList(listedInvalid);
      notifications.push({ id, mode: target.mode, body: n, recipients: reachable, idempotencyKey: idem, at: Date.now() });
      for (const token of reachable) {
        delivered.push({ token, notificationId: id, mode: target.mode, idempotencyKey: idem, body: n, at: Date.now() });
      }
    }
    if (idem) idempotent.set(idem, { status: 200, body });
    rec.result = body;
    if (failure) { // processed, but the reply is lost
      failures.take();
      rec.scripted = failure.status;
      errors(answer, failure.status, SCRIPTED_TEXT[failure.status] ?? 'Error', retryHeaders(failure));
      return;
    }
    answer(200, body);
  }

  function list(ctx) {
    ctx.rec.kind = 'list';
    if (!authorized(ctx)) return;
    if (ctx.query.get('app_id') !== appId) { errors(ctx.answer, 400, NO_APP); return; }
    const limit = Math.min(50, Math.max(1, Number.parseInt(ctx.query.get('limit') ?? '50', 10) || 50));
    const shown = notifications.slice(-limit).reverse().map((x) => ({ id: x.id, successful: x.recipients.length }));
    ctx.answer(200, { total_count: notifications.length, offset: 0, limit, notifications: shown });
  }

  const api = await startJsonApi({
    tls,
    port,
    route(ctx) {
      if (ctx.path === '/api/v1/notifications' || ctx.path === '/notifications') {
        if (ctx.method === 'POST') return create(ctx);
        if (ctx.method === 'GET') return list(ctx);
      }
      return errors(ctx.answer, 404, 'Not Found');
    },
  });

  return {
    origin: api.origin,
    port: api.port,
    appId,
    apiKey: key,
    /** Every request: {seq, method, path, headers, json, status, response, kind, scheme, idempotencyKey, replayed, scripted}. */
    requests: api.requests,
    /** Creates that reached the notification logic (not refused before). */
    get creates() { return api.requests.filter((r) => r.kind === 'create' && r.status !== 401 && r.status !== 403); },
    /** One entry per device reached: {token, notificationId, mode, idempotencyKey, body, at}. */
    delivered,
    /** Notifications created: {id, mode, body, recipients, idempotencyKey, at}. */
    notifications,
    /** Requests answered from the idempotency record. */
    get replays() { return replays; },
    get connections() { return api.connections; },
    forToken(token) { return delivered.filter((d) => d.token === token); },
    /** These ids are listed as invalid in replies (and not delivered to). */
    markInvalid(...ids) { for (const id of ids) invalid.add(id); },
    /** These ids are not delivered to and not listed (OneSignal only says so when nobody is left). */
    markUnsubscribed(...ids) { for (const id of ids) unsubscribed.add(id); },
    /**
     * The next `times` valid creates answer `status` ({errors: [...]}, Retry-After if given);
     * afterDelivery: the notification is created (and its idempotency key recorded) first.
     */
    failNext(status, opts) { failures.arm(status, opts); },
    close: () => api.close(),
  };
}
