// What the loopback mocks of the JSON push APIs share (one_signal, pusher_beams and pushpad
// *_mock.mjs): an HTTP/1.1 server (https with a test certificate, or plain http) that records
// every request and hands it to the mock's route with its body read and parsed, and scripted
// failures ("answer 503 twice, then normally").
//
//   const api = await startJsonApi({tls, maxBody, route: (ctx) => ctx.answer(200, {ok: true})});
//   api.origin, api.requests[0].json, await api.close()

import http from 'node:http';
import https from 'node:https';
import {
  closeServer, connectionTracker, listenLoopback, readBody,
} from '../../test/e2e/mock_support.mjs';

/**
 * Starts the server on 127.0.0.1. `route(ctx)` answers each request; ctx is
 *   {req, method, path, query (URLSearchParams), headers, body (Buffer), text, tooLarge,
 *    json (parsed, or undefined), jsonError (true when the body is not JSON), rec,
 *    answer(status, body, headers)}
 * `rec` is the request's record in `requests`: {seq, method, path, query, headers, text, json,
 * status, response, at, connection}; a route may add fields to it. Bodies above `maxBody` bytes
 * come with tooLarge = true (the rest is not read).
 */
export async function startJsonApi({ tls, port = 0, maxBody = 1024 * 1024, route }) {
  const requests = [];
  const conns = connectionTracker();
  let closed = false;

  const handler = async (req, res) => {
    const url = new URL(req.url, 'http://mock');
    const rec = {
      seq: requests.length + 1, method: req.method, path: url.pathname, query: url.search,
      headers: { ...req.headers }, text: '', json: undefined, status: null, response: undefined,
      at: Date.now(), connection: conns.idOf(req.socket),
    };
    requests.push(rec);
    if (closed) { res.destroy(); return; }
    const { body, tooLarge, aborted } = await readBody(req, maxBody);
    if (aborted) { rec.status = 'aborted'; return; }
    const text = body.toString('utf8');
    let json;
    let jsonError = false;
    if (text.length && !tooLarge) {
      try { json = JSON.parse(text); } catch { jsonError = true; }
    }
    rec.text = text;
    rec.json = json;
    const answer = (status, payload, headers = {}) => {
      rec.status = status;
      rec.response = payload;
      if (res.headersSent || res.destroyed) return;
      const out = payload === undefined ? '' : (typeof payload === 'string' ? payload : JSON.stringify(payload));
      try {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(out);
      } catch { /* the client went away */ }
    };
    try {
      await route({
        req, method: req.method, path: url.pathname, query: url.searchParams, headers: req.headers,
        body, text, tooLarge, json, jsonError, rec, answer,
      });
    } catch (e) {
      answer(500, { error: 'mock failure', description: String(e?.stack ?? e) });
    }
  };

  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
  server.on('connection', (socket) => conns.add(socket));
  server.on('secureConnection', (socket) => { socket.on('error', () => {}); });
  const listenPort = await listenLoopback(server, port);
  return {
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${listenPort}`,
    port: listenPort,
    requests,
    get connections() { return conns.count; },
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
 * Scripted failures: arm(status, {times = 1, retryAfter, body, afterDelivery}) queues answers;
 * take() returns the next one (counting it down) or null. `afterDelivery` marks a failure the
 * mock answers after doing the work (a reply lost on the way back).
 */
export function failureScript() {
  const queue = [];
  return {
    arm(status, { times = 1, retryAfter, body, afterDelivery = false } = {}) {
      queue.push({ status, times, retryAfter, body, afterDelivery });
    },
    take() {
      const next = queue[0];
      if (!next) return null;
      next.times -= 1;
      if (next.times <= 0) queue.shift();
      return next;
    },
    peek() { return queue[0] ?? null; },
    clear() { queue.length = 0; },
  };
}

/** A header value for Retry-After, or nothing. */
export function retryHeaders(spec) {
  return spec?.retryAfter !== undefined && spec?.retryAfter !== null ? { 'retry-after': String(spec.retryAfter) } : {};
}

/** True when the request says its body is JSON (any parameters). */
export function isJsonContentType(headers) {
  return /^application\/json\s*(;|$)/i.test(String(headers['content-type'] ?? ''));
}
