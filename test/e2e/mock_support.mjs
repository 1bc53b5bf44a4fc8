// Shared plumbing for the loopback provider mocks in src/providers/*/ *_mock.mjs.
//
// The mocks live beside the C++ providers they imitate, but their npm packages
// are installed in test/e2e/node_modules. Node resolves a bare import relative
// to the importing file, so a mock loads a package through `e2eRequire` below
// (a require() anchored at test/e2e/package.json) instead of `import 'pkg'`.
//
// Also here: reading a request body with a size limit, base64url and JWT
// helpers, and connection tracking so that close() can end every connection.

import { createPublicKey, createVerify, verify as cryptoVerify } from 'node:crypto';
import { createRequire } from 'node:module';

/** require() resolving packages from test/e2e/node_modules, for the mocks. */
export const e2eRequire = createRequire(new URL('./package.json', import.meta.url));

export const LOOPBACK = '127.0.0.1';

// ---------------------------------------------------------------- base64url

/** base64url (RFC 4648 §5) without padding. */
export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/**
 * Decodes strict base64url (no padding, no '+' '/', no whitespace); returns
 * null when the text is not base64url.
 */
export function fromB64url(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  return Buffer.from(text, 'base64url');
}

// ---------------------------------------------------------------------- JWT

/**
 * Splits a compact JWS and parses its header and claims. Returns
 * {header, claims, signingInput, signature} or throws an Error whose message
 * says what is wrong. Nothing is verified here.
 */
export function decodeJwt(token) {
  if (typeof token !== 'string') throw new Error('no token');
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS (expected 3 parts)');
  const [h, c, s] = parts;
  const hb = fromB64url(h);
  const cb = fromB64url(c);
  const sb = fromB64url(s);
  if (!hb || !cb || !sb) throw new Error('a JWS part is not base64url');
  let header;
  let claims;
  try {
    header = JSON.parse(hb.toString('utf8'));
    claims = JSON.parse(cb.toString('utf8'));
  } catch {
    throw new Error('JWS header or claims are not JSON');
  }
  if (!isPlainObject(header) || !isPlainObject(claims)) throw new Error('JWS header or claims are not objects');
  return { header, claims, signingInput: `${h}.${c}`, signature: sb };
}

/** ES256: true when the 64-byte R||S `signature` over `signingInput` verifies with `publicKey`. */
export function verifyEs256(publicKey, signingInput, signature) {
  if (!Buffer.isBuffer(signature) || signature.length !== 64) return false;
  try {
    return cryptoVerify('sha256', Buffer.from(signingInput), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** RS256 (RSASSA-PKCS1-v1_5 with SHA-256). */
export function verifyRs256(publicKey, signingInput, signature) {
  try {
    return createVerify('RSA-SHA256').update(signingInput).verify(publicKey, signature);
  } catch {
    return false;
  }
}

/** A KeyObject for a 65-byte uncompressed P-256 point (0x04||X||Y), or null. */
export function p256PublicKeyFromRaw(raw) {
  if (!Buffer.isBuffer(raw) || raw.length !== 65 || raw[0] !== 0x04) return null;
  try {
    return createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64url(raw.subarray(1, 33)), y: b64url(raw.subarray(33)) },
      format: 'jwk',
    });
  } catch {
    return null; // not on the curve
  }
}

export function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

// --------------------------------------------------------------- request body

/**
 * Reads a request (node:http IncomingMessage, http2 compat request or
 * ServerHttp2Stream) body. Resolves {body: Buffer, size, tooLarge}. When more
 * than `limit` bytes arrive it resolves at once with tooLarge=true (body holds
 * the first `limit` bytes) and discards the rest, so an oversized upload is
 * answered without waiting for it. Resolves early (tooLarge=false, aborted=true)
 * if the peer goes away.
 */
export function readBody(stream, limit) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      resolve(result);
    };
    stream.on('data', (chunk) => {
      if (done) return; // draining after an early answer
      size += chunk.length;
      if (size > limit) {
        finish({ body: Buffer.concat(chunks), size, tooLarge: true, aborted: false });
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => finish({ body: Buffer.concat(chunks), size, tooLarge: false, aborted: false }));
    stream.on('error', () => finish({ body: Buffer.concat(chunks), size, tooLarge: false, aborted: true }));
    stream.on('close', () => finish({ body: Buffer.concat(chunks), size, tooLarge: false, aborted: true }));
  });
}

// ---------------------------------------------------------------- connections

const CONN_ID = Symbol('mockConnectionId');

/**
 * Counts the TCP connections a server accepts (call add() from its
 * 'connection' event) and remembers them so close() can destroy them all.
 * idOf(socket) gives the 1-based number of the connection that a raw socket,
 * the TLSSocket over it, or an http2 session's socket proxy belongs to (the
 * TLS and proxy objects are matched through the loopback remote port, which
 * is unique among open connections).
 */
export function connectionTracker() {
  const sockets = new Set();
  const byPort = new Map(); // remotePort -> id, for open connections
  let count = 0;
  return {
    add(socket) {
      count += 1;
      const id = count;
      const rport = socket.remotePort;
      socket[CONN_ID] = id;
      sockets.add(socket);
      byPort.set(rport, id);
      socket.on('close', () => {
        sockets.delete(socket);
        if (byPort.get(rport) === id) byPort.delete(rport);
      });
      socket.on('error', () => { /* reset by peer; the request handlers see it */ });
      return id;
    },
    idOf(socket) {
      if (!socket) return 0;
      return socket[CONN_ID] ?? byPort.get(socket.remotePort) ?? 0;
    },
    get count() { return count; },
    get open() { return sockets.size; },
    destroyAll() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}

/** Resolves when `server` listens on 127.0.0.1:`port` (0 = any); resolves the port. */
export function listenLoopback(server, port = 0) {
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err);
    server.once('error', onError);
    server.listen(port, LOOPBACK, () => {
      server.off('error', onError);
      resolve(server.address().port);
    });
  });
}

/** Closes a server (stops accepting, waits for its 'close'); never rejects. */
export function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
  });
}
