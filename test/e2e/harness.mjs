// Test harness for Herald's end-to-end suite.
//
// startHerald() spawns `build/herald serve` on a free loopback port with a
// fresh data directory and fixed random API keys, waits for /healthz, and
// hands back helpers to stop it. Every server and every temp directory made
// here is also cleaned up when the test process exits, so a failing test file
// never leaves a server running.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Novu } from '@novu/api';
import * as errors from '@novu/api/models/errors/index.js';

export { errors };

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const heraldBin = process.env.HERALD_BIN
  ? path.resolve(process.env.HERALD_BIN)
  : path.join(repoRoot, 'build', 'herald');

const STARTUP_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const LOG_LIMIT = 256 * 1024; // keep the last 256 KiB of the child's output

const liveChildren = new Set();
const tempDirs = new Set();

// Last-resort cleanup: runs even when `after` hooks never ran, and when the
// test process itself is interrupted.
function cleanupAll() {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { cleanupAll(); process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[sig]); });
}

/** A fresh temp directory that is removed when the test process exits. */
export function makeTempDir(prefix = 'herald-e2e-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir now (instead of at exit). */
export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** A free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function randomKey(prefix) {
  return `${prefix}_${randomBytes(24).toString('hex')}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function appendLimited(buf, chunk) {
  const next = buf + chunk;
  return next.length > LOG_LIMIT ? next.slice(next.length - LOG_LIMIT) : next;
}

function waitForExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Starts Herald.
 *  opts.dataDir: use this data directory (kept after stop; the caller owns it).
 *                Without it a temp directory is made and removed by stop()/kill().
 *  opts.env:     extra environment; a value of undefined or null removes that
 *                variable (e.g. {HERALD_ALLOW_PRIVATE_TARGETS: undefined}).
 *                HERALD_DEVELOPMENT_API_KEY / HERALD_PRODUCTION_API_KEY given here
 *                become h.devKey / h.prodKey (use this to restart with the same keys).
 */
export async function startHerald(opts = {}) {
  if (!existsSync(heraldBin)) {
    throw new Error(
      `Herald binary not found at ${heraldBin}. Build it first (cmake -S . -B build && cmake --build build) ` +
      'or point HERALD_BIN at it.',
    );
  }
  const ownsDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? makeTempDir('herald-data-');

  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('HERALD_')) env[k] = v; // never inherit the operator's Herald config
  }
  Object.assign(env, {
    HERALD_DEVELOPMENT_API_KEY: randomKey('dev'),
    HERALD_PRODUCTION_API_KEY: randomKey('prod'),
    HERALD_ALLOW_PRIVATE_TARGETS: '1',
    HERALD_LOG_LEVEL: 'warn',
  });
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }

  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    try {
      return await launch({ env, port, dataDir, ownsDataDir });
    } catch (err) {
      lastError = err;
      // Only a lost race for the port is worth another try.
      if (!/address already in use|EADDRINUSE/i.test(err.stderr ?? '')) break;
    }
  }
  if (ownsDataDir) removeTempDir(dataDir);
  throw lastError;
}

async function launch({ env, port, dataDir, ownsDataDir }) {
  const listen = `127.0.0.1:${port}`;
  const url = `http://${listen}`;
  const args = ['serve', '--listen', listen, '--data', dataDir];
  const child = spawn(heraldBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);

  let stderr = '';
  let stdout = '';
  const verbose = !!process.env.HERALD_E2E_VERBOSE;
  child.stderr.setEncoding('utf8');
  child.stdout.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr = appendLimited(stderr, d);
    if (verbose) process.stderr.write(`[herald:${port}] ${d}`);
  });
  child.stdout.on('data', (d) => { stdout = appendLimited(stdout, d); });

  let spawnError = null;
  child.on('error', (e) => { spawnError = e; });
  const exited = waitForExit(child).then((r) => { liveChildren.delete(child); return r; });

  const fail = async (why) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    const msg = `Herald did not start (${why}).\ncommand: ${heraldBin} ${args.join(' ')}\n` +
      `--- stderr ---\n${stderr || '(empty)'}\n--- stdout ---\n${stdout || '(empty)'}`;
    console.error(msg);
    const err = new Error(msg);
    err.stderr = stderr;
    return err;
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let healthy = false;
  while (Date.now() < deadline) {
    if (spawnError) throw await fail(`spawn error: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw await fail(`exited early with code ${child.exitCode} signal ${child.signalCode}`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) { healthy = true; break; }
    } catch { /* not listening yet */ }
    await sleep(50);
  }
  if (!healthy) throw await fail(`GET /healthz was not 200 within ${STARTUP_TIMEOUT_MS} ms`);

  let stopped = null;
  const cleanupDir = () => { if (ownsDataDir) removeTempDir(dataDir); };

  return {
    url,
    port,
    devKey: env.HERALD_DEVELOPMENT_API_KEY,
    prodKey: env.HERALD_PRODUCTION_API_KEY,
    dataDir,
    process: child,
    stderr: () => stderr,
    stdout: () => stdout,
    /** SIGTERM, wait; SIGKILL after 5 s. Resolves {code, signal, forced}. */
    stop() {
      if (stopped) return stopped;
      stopped = (async () => {
        let forced = false;
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => { forced = true; child.kill('SIGKILL'); }, STOP_GRACE_MS);
          await exited;
          clearTimeout(timer);
        }
        const r = await exited;
        cleanupDir();
        return { ...r, forced };
      })();
      return stopped;
    },
    /** SIGKILL (simulated crash). Resolves {code, signal}. */
    kill() {
      if (stopped) return stopped;
      stopped = (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        const r = await exited;
        cleanupDir();
        return { ...r, forced: true };
      })();
      return stopped;
    },
  };
}

/** An @novu/api client for this server (retries off, SDK validation on). */
export function novu(h, key = h.devKey, serverURL = h.url) {
  return new Novu({ secretKey: key, serverURL, retryConfig: { strategy: 'none' } });
}

/**
 * Plain HTTP through fetch. body: object (sent as JSON), string or Buffer (sent
 * as is, content-type application/json unless headers say otherwise).
 * key: API key, defaults to the dev key; null sends no Authorization header.
 * Resolves {status, headers, json, text}; json is undefined when the body is not JSON.
 */
export async function raw(h, method, urlPath, { body, headers = {}, key = h.devKey } = {}) {
  const hdrs = { accept: 'application/json', ...headers };
  if (key !== null && key !== undefined) hdrs.authorization = `ApiKey ${key}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) {
      hdrs['content-type'] = 'application/json';
    }
  }
  const res = await fetch(h.url + urlPath, {
    method, headers: hdrs, body: payload, signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * Like raw() but over node:http, for bodies the server may refuse before
 * reading them (oversized). Resolves on the response even if writing the
 * rest of the body fails. opts.chunked streams the body without Content-Length.
 */
export function rawHttp(h, method, urlPath, { body, headers = {}, key = h.devKey, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(h.url + urlPath);
    const hdrs = { accept: 'application/json', 'content-type': 'application/json', ...headers };
    if (key !== null && key !== undefined) hdrs.authorization = `ApiKey ${key}`;
    const buf = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(
      typeof body === 'string' ? body : JSON.stringify(body));
    if (buf && !chunked) hdrs['content-length'] = String(buf.length);
    let answered = false;
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: hdrs,
    }, (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', () => { /* server may reset after answering */ });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, json, text });
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error('rawHttp timeout')));
    req.on('error', (e) => { if (!answered) reject(e); });
    if (buf) {
      if (chunked) {
        const step = 64 * 1024;
        for (let i = 0; i < buf.length; i += step) req.write(buf.subarray(i, i + step));
      } else {
        req.write(buf);
      }
    }
    req.end();
  });
}

/** A unique id with a readable prefix, for ids that must not clash within a run. */
export function uid(prefix) {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

function describeErr(err) {
  if (!err || typeof err !== 'object') return String(err);
  const parts = [`${err.constructor?.name}: ${err.message}`];
  if (err.statusCode !== undefined) parts.push(`statusCode=${err.statusCode}`);
  if (err.body !== undefined) parts.push(`body=${String(err.body).slice(0, 2000)}`);
  if (err.cause) parts.push(`cause=${String(err.cause?.message ?? err.cause).slice(0, 2000)}`);
  return parts.join(' | ');
}

/**
 * Awaits an SDK call that must fail with a typed error.
 *  cls: class name exported by '@novu/api/models/errors' (default 'ErrorDto')
 *  status: expected err.statusCode
 *  message: exact err.message (string) or a RegExp
 *  includes: string(s) that must appear in err.message or the raw body
 * Returns the error for further checks.
 */
export async function expectSdkError(promise, { cls = 'ErrorDto', status, message, includes } = {}) {
  let err;
  try {
    const value = await promise;
    assert.fail(`expected ${cls}${status ? ` ${status}` : ''} but the call resolved: ${JSON.stringify(value)?.slice(0, 2000)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  const Cls = errors[cls];
  assert.ok(Cls, `unknown error class ${cls}`);
  assert.ok(err instanceof Cls && err.constructor.name === cls,
    `expected ${cls}, got ${describeErr(err)}`);
  if (status !== undefined) assert.equal(err.statusCode, status, `status: ${describeErr(err)}`);
  if (typeof message === 'string') assert.equal(err.message, message, describeErr(err));
  else if (message instanceof RegExp) assert.match(err.message, message, describeErr(err));
  for (const s of [].concat(includes ?? [])) {
    assert.ok(`${err.message}\n${err.body ?? ''}`.includes(s), `error should mention "${s}": ${describeErr(err)}`);
  }
  return err;
}

/**
 * Checks a raw response is a Novu-style JSON error:
 * {statusCode, timestamp (ISO), path, message} with Content-Type application/json.
 * includes: string(s) that must appear in the message.
 */
export function assertErrorBody(res, status, { includes, path: p } = {}) {
  const ctx = `${res.status} ${res.text?.slice(0, 1000)}`;
  assert.equal(res.status, status, `status: ${ctx}`);
  const ct = res.headers.get ? res.headers.get('content-type') : res.headers['content-type'];
  assert.match(ct ?? '', /^application\/json/i, `content-type of error: ${ct}`);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json), `JSON object body: ${ctx}`);
  assert.equal(res.json.statusCode, status, `body.statusCode: ${ctx}`);
  assert.equal(typeof res.json.timestamp, 'string', `body.timestamp: ${ctx}`);
  assert.ok(!Number.isNaN(Date.parse(res.json.timestamp)), `body.timestamp is a date: ${ctx}`);
  assert.equal(typeof res.json.path, 'string', `body.path: ${ctx}`);
  if (p !== undefined) assert.ok(res.json.path.includes(p), `body.path should contain ${p}: ${ctx}`);
  assert.ok('message' in res.json, `body.message: ${ctx}`);
  const msg = typeof res.json.message === 'string' ? res.json.message : JSON.stringify(res.json.message);
  assert.ok(msg.length > 0, `non-empty message: ${ctx}`);
  for (const s of [].concat(includes ?? [])) {
    assert.ok(msg.includes(s), `error message should mention "${s}": ${ctx}`);
  }
  return res.json;
}
