// A loopback push-webhook receiver for delivery tests.
//
// startReceiver() listens on 127.0.0.1:0 and records every request it gets:
//   {seq, method, url, headers, rawBody (Buffer), text, json, token, signature,
//    sigOk, receivedAt, answeredAt, outcome}
// `token` is json.target[0] (push-webhook sends one POST per device token).
// `sigOk` is true when X-Novu-Signature is the lowercase hex HMAC-SHA256 of the
// exact raw body bytes, keyed with `secret` (verified before any parsing).
//
// How each request is answered comes from `behave(req, n, rx)`, where `req` is
// the record above and `n` counts the requests seen for that token (1-based; for
// requests without a token it counts those). It may return (or resolve to):
//   undefined / null          200 {"id": "rcv-<seq>"}
//   a number                  that status with the default body
//   {status?, headers?, body?, delayMs?}
//                             body: object (sent as JSON), string or Buffer;
//                             delayMs: wait before answering
//   'hang'                    never answer (the socket is kept until the
//                             client gives up or the receiver closes)
//   'reset'                   TCP reset (socket.resetAndDestroy()) without answering
//   'close'                   close the connection (FIN) without answering
//
// The receiver is bounded: bodies over maxBodyBytes get 413, at most
// maxRequests are recorded (later ones get 503 and are counted in `dropped`),
// and it closes itself after lifetimeMs even if a test forgets to.

import { createHmac } from 'node:crypto';
import http from 'node:http';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `predicate` (sync or async) until it returns a truthy value, which is
 * returned. Throws after timeoutMs; `describe` (string or function returning
 * one) is added to the error to show the state that was last seen.
 */
export async function waitFor(predicate, timeoutMs = 5_000, { interval = 25, describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) {
      let state = '';
      try {
        state = typeof describe === 'function' ? await describe() : (describe ?? '');
      } catch (e) {
        state = `(describe failed: ${e.message})`;
      }
      throw new Error(`waitFor: condition not met within ${timeoutMs} ms${state ? `: ${state}` : ''}`);
    }
    await sleep(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
}

/** Lowercase hex HMAC-SHA256 of `body` (Buffer or string) with `secret`. */
export function novuSignature(secret, body) {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export function startReceiver({
  secret = '',
  behave,
  path = '/hook',
  maxBodyBytes = 1024 * 1024,
  maxRequests = 20_000,
  lifetimeMs = 180_000,
} = {}) {
  const requests = [];
  const perToken = new Map(); // token -> count
  const sockets = new Set();
  let behaviour = behave;
  let dropped = 0;
  let inFlight = 0;
  let closed = false;
  let seq = 0;

  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBodyBytes) tooBig = true;
      else chunks.push(c);
    });
    req.on('error', () => { /* client went away */ });
    req.on('end', () => { handle(req, res, tooBig, Buffer.concat(chunks)); });
  });
  server.keepAliveTimeout = 60_000; // no idle close racing a reused connection mid-test
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => { /* reset by peer etc. */ });
  });
  server.on('clientError', (_err, socket) => { socket.destroy(); });

  function send(res, rec, status, headers = {}, body) {
    let payload;
    const hdrs = { ...headers };
    if (body === undefined) body = { id: `rcv-${rec?.seq ?? 0}` };
    if (Buffer.isBuffer(body) || typeof body === 'string') {
      payload = body;
    } else {
      payload = JSON.stringify(body);
      if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) {
        hdrs['content-type'] = 'application/json';
      }
    }
    if (rec) {
      rec.outcome = { status, headers: hdrs, body: typeof payload === 'string' ? payload : payload.toString('utf8') };
      rec.answeredAt = Date.now();
    }
    if (res.destroyed || res.writableEnded) return;
    try {
      res.writeHead(status, hdrs);
      res.end(payload);
    } catch { /* the client is gone */ }
  }

  async function handle(req, res, tooBig, rawBody) {
    if (closed) { res.destroy(); return; }
    if (tooBig) { send(res, null, 413, {}, { message: 'too big' }); return; }
    if (requests.length >= maxRequests) { dropped++; send(res, null, 503, {}, { message: 'receiver full' }); return; }

    const text = rawBody.toString('utf8');
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    const signature = req.headers['x-novu-signature'];
    const expected = novuSignature(secret, rawBody);
    const token = Array.isArray(json?.target) ? json.target[0] : undefined;
    const rec = {
      seq: ++seq,
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawBody,
      text,
      json,
      token,
      signature,
      sigOk: typeof signature === 'string' && signature === expected,
      receivedAt: Date.now(),
      answeredAt: null,
      outcome: null,
    };
    requests.push(rec);
    const key = token ?? '';
    const n = (perToken.get(key) ?? 0) + 1;
    perToken.set(key, n);

    if (req.method !== 'POST' || req.url.split('?')[0] !== path) {
      send(res, rec, 404, {}, { message: 'not the hook path' });
      return;
    }

    inFlight++;
    let done = false;
    const finish = () => { if (!done) { done = true; inFlight--; } };
    res.on('close', finish);
    try {
      let action = behaviour ? await behaviour(rec, n, api) : undefined;
      if (action === 'hang') {
        rec.outcome = { hang: true };
        return; // kept open until the client or close() ends it
      }
      if (action === 'reset' || action === 'close') {
        rec.outcome = { [action]: true };
        rec.answeredAt = Date.now();
        const s = req.socket;
        if (action === 'reset' && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
        else s.destroy();
        finish();
        return;
      }
      if (typeof action === 'number') action = { status: action };
      action = action ?? {};
      if (action.delayMs > 0) await sleep(action.delayMs);
      if (closed) { res.destroy(); finish(); return; }
      send(res, rec, action.status ?? 200, action.headers ?? {}, action.body);
    } catch (err) {
      send(res, rec, 500, {}, { message: `receiver behaviour threw: ${err?.message}` });
    } finally {
      if (res.writableEnded) finish();
    }
  }

  const api = {
    server,
    port: 0,
    url: '',
    secret,
    /** Every recorded request, in arrival order. */
    requests,
    get dropped() { return dropped; },
    /** Requests received and not yet answered (hung ones included). */
    get inFlight() { return inFlight; },
    /** Replaces the behaviour for later requests. */
    setBehave(fn) { behaviour = fn; },
    forToken(token) { return requests.filter((r) => r.token === token); },
    count(token) { return requests.filter((r) => r.token === token).length; },
    /** Map token -> number of requests. */
    counts() {
      const m = new Map();
      for (const r of requests) m.set(r.token, (m.get(r.token) ?? 0) + 1);
      return m;
    },
    /** Waits until `token` has at least n requests; resolves them. */
    async waitForToken(token, n = 1, timeoutMs = 8_000) {
      await waitFor(() => api.count(token) >= n, timeoutMs, {
        describe: () => `token ${token}: ${api.count(token)} of ${n} request(s); receiver saw ${requests.length} in all`,
      });
      return api.forToken(token);
    },
    /** Waits until every token has at least one request. */
    async waitForTokens(tokens, timeoutMs = 8_000) {
      await waitFor(() => tokens.every((t) => api.count(t) >= 1), timeoutMs, {
        describe: () => `missing: ${tokens.filter((t) => api.count(t) === 0).join(', ')}`,
      });
    },
    close() {
      if (closed) return closePromise;
      closed = true;
      clearTimeout(lifetime);
      closePromise = new Promise((resolve) => {
        server.close(() => resolve());
        if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closePromise;
    },
  };
  let closePromise;
  const lifetime = setTimeout(() => { api.close(); }, lifetimeMs);
  lifetime.unref();

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      api.port = server.address().port;
      api.url = `http://127.0.0.1:${api.port}${path}`;
      resolve(api);
    });
  });
}
