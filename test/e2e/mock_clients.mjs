// What the mock test files (mock_*.test.mjs) share: the test PKI, a per-test
// time limit, small independent HTTP/1.1 and HTTP/2 clients that trust the test
// CA, a mock started for one test, and the error an SDK call throws. Test code
// only; the mocks themselves share mock_support.mjs.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before } from 'node:test';
import { makeTlsAuthority } from './tls_authority.mjs';

export const T = { timeout: 15_000 };
export const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);

let pki;

/**
 * Makes the test PKI before the file's tests and removes it after them; call
 * once at the top of a test file. Returns a getter for it (it exists from the
 * first test on). `request` and `connectH2` trust its CA by default.
 */
export function useTestPki() {
  before(async () => { pki = await makeTlsAuthority(); });
  after(() => pki?.cleanup());
  return () => pki;
}

/** Runs `fn(mock)` on a mock `start(opts)` resolves, and closes the mock after it. */
export async function withMock(start, opts, fn) {
  const mock = await start(opts);
  try { await fn(mock); } finally { await mock.close(); }
}

/** What `promise` (an SDK call expected to fail) rejects with; a test failure if it resolves. */
export async function thrownBy(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return assert.fail('the SDK call succeeded');
}

/** One HTTP/1.1 request (http or https by URL; https trusts the test CA). */
export function request(url, { method = 'POST', headers = {}, body, ca = pki.ca.cert } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, headers, ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** One HTTP/2 request on `session`. Rejects on a stream error (e.g. REFUSED_STREAM). */
export function h2(session, headers, body) {
  return new Promise((resolve, reject) => {
    const hdrs = Object.fromEntries(Object.entries({ ':method': 'POST', ...headers }).filter(([, v]) => v !== undefined));
    const req = session.request(hdrs);
    let status;
    let resHeaders;
    const chunks = [];
    req.setTimeout(5_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.on('response', (h) => { status = h[':status']; resHeaders = h; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let json;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      resolve({ status, headers: resHeaders, text, json });
    });
    req.on('error', reject);
    if (req.writable) req.end(body); // GET/HEAD streams are already half-closed
  });
}

export function connectH2(origin, opts = {}) {
  const session = http2.connect(origin, { ca: pki.ca.cert, ...opts });
  session.on('error', () => { /* surfaced through the requests */ });
  return session;
}

export function closeH2(session) {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) { resolve(); return; }
    const timer = setTimeout(() => { session.destroy(); resolve(); }, 1_000);
    session.close(() => { clearTimeout(timer); resolve(); });
  });
}
