#!/usr/bin/env node
// Provider delivery benchmark on loopback: Herald, and beside it in the same run a reference
// sender, delivering to each provider's loopback mock (src/providers/*/*_mock.mjs) over TLS.
//
//   trigger (bulk, 100 events a request) ──▶ herald ──Web Push / APNs / FCM / Expo──▶ mock (this process)
//   reference library (a child process)  ────────────────────────────────────▶ fresh mock
//
// For each provider: a fresh mock over TLS with a throw-away test CA; a fresh Herald (copied
// build/herald, temporary data directory, loopback port) trusting that CA; the integration,
// SUBSCRIBERS subscribers with one device token each, a workflow with one push step; MESSAGES
// triggers (one message each). Measured from the first trigger sent until the mock has accepted
// a push for every one of the MESSAGES triggers (read in-process from the mock's counters, no
// Herald API in the loop): deliveries/s, the mock's connections opened and auth exchanges per
// 1,000 messages (FCM: token exchanges; APNs: distinct provider JWTs; Web Push: distinct VAPID
// JWTs; Expo: distinct access tokens), the requests the mock answered per 1,000 messages (Expo
// carries up to 100 messages a request), Herald's CPU time per message (/proc/PID/task/*/stat).
// Then the reference library sends the same MESSAGES pushes to a fresh instance of the same mock
// (web-push for Web Push, @parse/node-apn for APNs, firebase-admin over HTTP/1.1 for FCM,
// expo-server-sdk's chunkPushNotifications + sendPushNotificationsAsync at its own concurrency for
// Expo; bench/providers/reference.mjs). Expo's receipts are not part of the run: Herald checks
// them 15 minutes later, as Expo advises.
// Prints a table and a JSON summary, appends one CSV row per sender to
// bench/results/<UTC date>-providers.csv. Builds nothing; every step is bounded in time; every
// process it starts is stopped and every temporary directory removed on exit.
//
// Usage: node bench/providers/run.mjs [--messages N] [--subscribers S] [--concurrency C]
//                                     [--providers web-push,apns,fcm,expo]
// Env:   MESSAGES (20000) SUBSCRIBERS (100) CONCURRENCY (64: the reference's requests in flight,
//        Herald's default per integration; expo-server-sdk keeps its own 6) PROVIDERS
//        (web-push,apns,fcm,expo) BUILD_DIR (build) RESULTS_DIR (bench/results) REV (the
//        checkout's short commit) WAIT_SECONDS (180: per sender, from the first trigger/send to
//        the last delivery) MAX_SECONDS (1800: the whole run) RESULT_JSON (if set, the JSON
//        summary is also written there)
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes, generateKeyPairSync } from 'node:crypto';
import {
  appendFileSync, copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync,
  readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const API_KEY = 'bench-development-api-key-0001';
const WORKFLOW = 'bench';
const BUNDLE = 'com.example.herald.bench';
const PROVIDERS = ['web-push', 'apns', 'fcm', 'expo'];

// ------------------------------------------------------------------------------------ options
function fail(msg) {
  process.stderr.write(`bench/providers: ${msg}\n`);
  process.exit(2);
}
const opts = {
  messages: process.env.MESSAGES ?? '20000',
  subscribers: process.env.SUBSCRIBERS ?? '100',
  concurrency: process.env.CONCURRENCY ?? '64',
  providers: process.env.PROVIDERS ?? PROVIDERS.join(','),
  waitSeconds: process.env.WAIT_SECONDS ?? '180',
  maxSeconds: process.env.MAX_SECONDS ?? '1800',
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  const key = { '--messages': 'messages', '--subscribers': 'subscribers', '--concurrency': 'concurrency', '--providers': 'providers' }[flag];
  if (flag === '-h' || flag === '--help') {
    const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
    process.stdout.write(`${text.slice(0, text.findIndex((l) => !l.startsWith('//')))
      .map((l) => l.replace(/^\/\/ ?/, '')).join('\n')}\n`);
    process.exit(0);
  }
  if (!key || argv[i + 1] === undefined) fail(`unknown argument '${flag}' (see --help)`);
  opts[key] = argv[++i];
}
for (const k of ['messages', 'subscribers', 'concurrency', 'waitSeconds', 'maxSeconds']) {
  if (!/^[1-9][0-9]*$/.test(opts[k])) fail(`${k} must be a positive integer, got '${opts[k]}'`);
  opts[k] = Number(opts[k]);
}
opts.providers = opts.providers.split(',').map((s) => s.trim()).filter(Boolean);
for (const p of opts.providers) if (!PROVIDERS.includes(p)) fail(`unknown provider '${p}' (${PROVIDERS.join(', ')})`);
const M = opts.messages;
const S = Math.min(opts.subscribers, M);
const BUILD_DIR = path.resolve(ROOT, process.env.BUILD_DIR ?? 'build');
const RESULTS_DIR = path.resolve(ROOT, process.env.RESULTS_DIR ?? 'bench/results');
const HERALD_SRC = path.join(BUILD_DIR, 'herald');
if (!existsSync(HERALD_SRC)) {
  fail(`${HERALD_SRC} not found. Build first (from ${ROOT}):\n  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release\n  cmake --build build --target herald`);
}
if (!existsSync(path.join(ROOT, 'test/e2e/node_modules/web-push'))) {
  fail('test/e2e/node_modules is missing: run scripts/install-deps.sh --test (or cd test/e2e && npm ci)');
}

// The mocks and the test CA (imported after the checks: they load packages from test/e2e).
const { makeTlsAuthority } = await import('../../test/e2e/tls_authority.mjs');
const { startWebPushMock, makeVapidKeys } = await import('../../src/providers/web_push/web_push_mock.mjs');
const { startApnsMock } = await import('../../src/providers/apns/apns_mock.mjs');
const { startFcmMock } = await import('../../src/providers/fcm/fcm_mock.mjs');
const { startExpoMock } = await import('../../src/providers/expo/expo_mock.mjs');

// ------------------------------------------------------------------ processes and cleanup
const TMP = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-providers.'));
const children = new Set();
const mocks = new Set();
function cleanupSync() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  children.clear();
  try { rmSync(TMP, { recursive: true, force: true }); } catch { /* ignore */ }
}
process.on('exit', cleanupSync);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.once(sig, () => { process.stderr.write(`bench/providers: ${sig}, stopping\n`); process.exit(code); });
}
const watchdog = setTimeout(() => {
  process.stderr.write(`bench/providers: MAX_SECONDS (${opts.maxSeconds}) passed, stopping\n`);
  process.exit(1);
}, opts.maxSeconds * 1000);
watchdog.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const REV = process.env.REV || (() => {
  try { return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return 'unknown'; }
})();

/** Waits for a child's exit, up to ms; resolves true if it exited. */
function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}
async function stopChild(child, graceMs = 10_000) {
  if (!child) return;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    if (!await exited(child, graceMs)) { child.kill('SIGKILL'); await exited(child, 5_000); }
  }
  children.delete(child);
}
async function closeMock(mock) {
  if (!mock) return;
  mocks.delete(mock);
  await Promise.race([mock.close(), sleep(5_000)]);
}

// A process's CPU time so far by thread name (user + system, clock ticks).
function cpuByThread(pid) {
  const out = {};
  let tasks = [];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const t of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[comm] = (out[comm] ?? 0) + Number(f[11]) + Number(f[12]); // utime, stime
    } catch { /* the thread ended */ }
  }
  return out;
}
function processTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch { return NaN; }
}
const sumTicks = (o) => Object.values(o).reduce((a, b) => a + b, 0);
const ticksToUs = (ticks) => ticks * 1e6 / CLK_TCK;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// --------------------------------------------------------------------------------- Herald
// A copy of the binary, taken once: the tree's build/herald may be relinked during the run.
const HERALD_BIN = path.join(TMP, 'herald');
let heraldBuiltAt = null;
{
  let copied = false;
  for (let attempt = 0; attempt < 60 && !copied; attempt++) {
    try {
      const before = statSync(HERALD_SRC);
      copyFileSync(HERALD_SRC, HERALD_BIN);
      const after = statSync(HERALD_SRC);
      copied = before.size === after.size && before.mtimeMs === after.mtimeMs && statSync(HERALD_BIN).size === after.size
        && Date.now() - after.mtimeMs > 2_000;
      heraldBuiltAt = after.mtime;
    } catch { /* being rebuilt */ }
    if (!copied) await sleep(1_000);
  }
  if (!copied) fail(`could not take a stable copy of ${HERALD_SRC} (is it being rebuilt?)`);
  chmodSync(HERALD_BIN, 0o755);
}
// Which binary was measured (REV names the checkout, which may have moved on since the build).
const BINARY = {
  path: HERALD_SRC, built: heraldBuiltAt.toISOString().replace(/\.\d+Z$/, 'Z'),
  sha256: createHash('sha256').update(readFileSync(HERALD_BIN)).digest('hex').slice(0, 16),
};

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
/** One API call; resolves {status, json, text}. */
function api(herald, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: herald.port, path: urlPath, method, agent: keepAlive, timeout: 30_000,
      headers: {
        authorization: `ApiKey ${API_KEY}`,
        ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}
async function expectApi(herald, method, urlPath, body, status) {
  const res = await api(herald, method, urlPath, body);
  if (res.status !== status) throw new Error(`${method} ${urlPath} answered ${res.status}, expected ${status}: ${res.text.slice(0, 400)}`);
  return res;
}

async function startHerald(caFile, label) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  Object.assign(env, {
    HERALD_DEVELOPMENT_API_KEY: API_KEY, HERALD_CA_FILE: caFile, HERALD_ALLOW_PRIVATE_TARGETS: '1',
    HERALD_LOG_LEVEL: 'warn',
  });
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const dataDir = mkdtempSync(path.join(TMP, `data-${label}-`));
    const logPath = path.join(TMP, `herald-${label}-${attempt}.log`);
    const log = openSync(logPath, 'w');
    const child = spawn(HERALD_BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir], {
      env, stdio: ['ignore', log, log],
    });
    closeSync(log);
    children.add(child);
    const herald = { child, port, pid: child.pid, logPath, dataDir };
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await api(herald, 'GET', '/healthz');
        if (res.status === 200) return herald;
      } catch { /* not yet */ }
      await sleep(100);
    }
    const tail = readFileSync(logPath, 'utf8').slice(-600);
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
    if (!/address already in use|EADDRINUSE/i.test(tail) || attempt === 3) throw new Error(`herald did not start: ${tail}`);
  }
  throw new Error('herald did not start');
}

async function setupHerald(herald, integration, tokens) {
  await expectApi(herald, 'POST', '/v1/integrations', {
    providerId: integration.providerId, channel: 'push', name: 'bench', identifier: 'bench', active: true,
    credentials: integration.credentials,
  }, 201);
  for (let k = 0; k < tokens.length; k++) {
    await expectApi(herald, 'POST', '/v2/subscribers', { subscriberId: `sub-${k}` }, 201);
    await expectApi(herald, 'PUT', `/v1/subscribers/sub-${k}/credentials`, {
      providerId: integration.providerId, integrationIdentifier: 'bench', credentials: { deviceTokens: [tokens[k]] },
    }, 200);
  }
  await expectApi(herald, 'POST', '/v2/workflows', {
    name: WORKFLOW, workflowId: WORKFLOW, active: true,
    steps: [{ name: 'Push', type: 'push', controlValues: { title: 'Hi {{subscriber.subscriberId}}', body: 'n={{payload.n}}' } }],
  }, 201);
}

// ---------------------------------------------------------------------------------- mocks
// Each provider: how to start its mock, make credentials and device tokens, count connections
// and auth exchanges, and read back the n of an accepted push (body "n=<n>").
const kinds = {
  'web-push': {
    title: 'Web Push',
    authKind: 'distinct VAPID JWTs',
    start: (pki) => startWebPushMock({ tls: pki.server }),
    setup(mock) {
      const vapid = makeVapidKeys();
      const subject = 'mailto:bench@example.com';
      const tokens = Array.from({ length: S }, () => JSON.stringify(mock.newSubscription({ vapidPublicKey: vapid.publicKey }).subscription));
      return {
        tokens,
        integration: { providerId: 'web-push', credentials: { apiKey: vapid.publicKey, secretKey: vapid.privateKey, from: subject } },
        job: { vapid: { subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey } },
      };
    },
    auth: (mock) => mock.jwts.length,
    nOf: (r) => bodyN(r.plaintext && JSON.parse(r.plaintext.toString('utf8')).body),
  },
  apns: {
    title: 'APNs',
    authKind: 'distinct provider JWTs',
    start: (pki) => startApnsMock({ tls: pki.server }),
    setup(mock) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
      const keyId = 'BENCHKEY01';
      const teamId = 'BENCHTEAM1';
      mock.addKey({ keyId, teamId, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) });
      return {
        tokens: Array.from({ length: S }, () => randomBytes(32).toString('hex')),
        integration: {
          providerId: 'apns',
          credentials: { secretKey: privateKeyPem, apiKey: keyId, projectName: teamId, applicationId: BUNDLE, baseUrl: mock.origin },
        },
        job: { apns: { privateKeyPem, keyId, teamId, topic: BUNDLE } },
      };
    },
    auth: (mock) => mock.jwts.length,
    nOf: (r) => bodyN(r.payload?.aps?.alert?.body),
  },
  fcm: {
    title: 'FCM',
    authKind: 'token exchanges',
    start: (pki) => startFcmMock({ tls: pki.server }),
    setup(mock) {
      const account = mock.makeServiceAccount({ projectId: 'herald-bench' });
      return {
        tokens: Array.from({ length: S }, (_, k) => `bench-${k}:${randomBytes(40).toString('base64url')}`),
        integration: { providerId: 'fcm', credentials: { serviceAccount: account.json, baseUrl: mock.origin } },
        job: { fcm: { serviceAccount: account.json } },
      };
    },
    auth: (mock) => mock.exchanges,
    nOf: (r) => (r.validateOnly ? -1 : bodyN(r.message?.notification?.body)),
  },
  expo: {
    title: 'Expo',
    authKind: 'distinct access tokens',
    start: (pki) => startExpoMock({ tls: pki.server }),
    setup(mock) {
      const accessToken = `bench-expo-${randomBytes(16).toString('hex')}`;
      mock.requireAccessToken(accessToken);
      return {
        tokens: Array.from({ length: S }, (_, k) => `ExponentPushToken[bench-${k}-${randomBytes(8).toString('hex')}]`),
        integration: { providerId: 'expo', credentials: { apiKey: accessToken, baseUrl: mock.origin } },
        job: { expo: { accessToken } },
      };
    },
    auth: (mock) => new Set(mock.sends.map((r) => r.accessToken)).size,
    nOf: (r) => (r.ticket?.status === 'ok' ? bodyN(r.message?.body) : -1),
  },
};
// How many duplicate deliveries are described in the JSON summary (which copy, on which
// connection, when): DUPLICATE_SAMPLES, default 5.
const MAX_DUPLICATE_SAMPLES = Number(process.env.DUPLICATE_SAMPLES ?? 5);
function bodyN(body) {
  if (typeof body !== 'string' || !body.startsWith('n=')) return -1;
  const n = Number(body.slice(2));
  return Number.isInteger(n) && n >= 0 && n < M ? n : -1;
}

/**
 * Watches the mock's HTTP/2 sessions: how many opened, and the errors they reported. (A session
 * that nghttp2 ends with GOAWAY for too many RST_STREAMs reports nothing to Node, not even
 * 'close' while the client keeps the socket: those are counted by the replies they lost, see
 * tracker().)
 */
function watchSessions(mock) {
  const w = { sessions: 0, errors: {} };
  mock.server.on('session', (s) => {
    w.sessions += 1;
    s.on('error', (e) => { const c = e?.code ?? 'error'; w.errors[c] = (w.errors[c] ?? 0) + 1; });
  });
  return w;
}

/**
 * Tracks which of the M messages the mock has accepted, reading only the entries added since
 * the last call. done when all M have arrived; lastAt = the mock's stamp of the one that
 * completed the set. A duplicate is a push the mock accepted again: the sender did not get the
 * first answer (the connection it came on was ended before the reply went out, e.g. by the
 * mock's GOAWAY) and sent it again; lostReplyConnections = the connections of those first copies.
 */
function tracker(mock, nOf) {
  const seen = new Int32Array(M); // 1 + index in mock.received of the first copy, 0 = not yet
  let index = 0;
  const t = { distinct: 0, duplicates: 0, foreign: 0, lastAt: 0, firstAt: 0, duplicateSamples: [], lostReplyConnections: new Set() };
  t.update = () => {
    const rec = mock.received;
    for (; index < rec.length; index++) {
      const r = rec[index];
      const n = nOf(r);
      if (n < 0) { t.foreign += 1; continue; }
      if (seen[n]) {
        t.duplicates += 1;
        const first = rec[seen[n] - 1];
        t.lostReplyConnections.add(first.connection);
        if (t.duplicateSamples.length < MAX_DUPLICATE_SAMPLES) {
          t.duplicateSamples.push({ n, first: { connection: first.connection, at: first.at }, again: { connection: r.connection, at: r.at } });
        }
        continue;
      }
      seen[n] = index + 1;
      t.distinct += 1;
      if (!t.firstAt) t.firstAt = r.at;
      if (t.distinct === M) t.lastAt = r.at;
    }
    return t.distinct === M;
  };
  return t;
}

// ----------------------------------------------------------------------------- one sender
async function measureHerald(provider, pki) {
  const kind = kinds[provider];
  const mock = await kind.start(pki);
  mocks.add(mock);
  const sessions = watchSessions(mock);
  let herald;
  try {
    const setup = kind.setup(mock);
    herald = await startHerald(pki.ca.certPath, provider);
    await setupHerald(herald, setup.integration, setup.tokens);
    const track = tracker(mock, kind.nOf);
    const conn0 = mock.connections;
    const auth0 = kind.auth(mock);
    const cpu0 = cpuByThread(herald.pid);
    const self0 = process.cpuUsage();

    // Triggers: M events, 100 per bulk request, 4 requests in flight.
    const BATCH = 100;
    const batches = Math.ceil(M / BATCH);
    let nextBatch = 0;
    let acked = 0;
    let triggerErrors = 0;
    const triggerProblems = [];
    const startAt = Date.now();
    const triggering = Promise.all(Array.from({ length: 4 }, async () => {
      for (;;) {
        const b = nextBatch++;
        if (b >= batches) return;
        const events = [];
        for (let i = b * BATCH; i < Math.min(M, (b + 1) * BATCH); i++) {
          events.push({ name: WORKFLOW, to: `sub-${i % S}`, payload: { n: i } });
        }
        try {
          const res = await api(herald, 'POST', '/v1/events/trigger/bulk', { events });
          const ok = res.status === 201 && Array.isArray(res.json?.data) ? res.json.data.filter((d) => d.status === 'processed').length : 0;
          acked += ok;
          triggerErrors += events.length - ok;
          if (ok < events.length && triggerProblems.length < 3) triggerProblems.push(`${res.status} ${res.text.slice(0, 200)}`);
        } catch (err) {
          triggerErrors += events.length;
          if (triggerProblems.length < 3) triggerProblems.push(err.message);
        }
      }
    }));
    let triggersDone = false;
    let triggerEndAt = 0;
    triggering.then(() => { triggersDone = true; triggerEndAt = Date.now(); });

    const deadline = startAt + opts.waitSeconds * 1000;
    let complete = false;
    while (Date.now() < deadline) {
      if (track.update()) { complete = true; break; }
      if (herald.child.exitCode !== null) break;
      if (triggersDone && acked === 0) break;
      await sleep(20);
    }
    const cpu1 = cpuByThread(herald.pid);
    const self1 = process.cpuUsage(self0);
    const measuredEnd = Date.now();
    await triggering;
    await sleep(300); // late duplicates, if any
    track.update();
    const byThread = {};
    for (const [name, ticks] of Object.entries(cpu1)) {
      const used = ticks - (cpu0[name] ?? 0);
      if (used > 0) byThread[name] = Math.round(ticksToUs(used) / M);
    }
    let diagnosis;
    if (!complete) {
      const res = await api(herald, 'GET', '/v1/messages?limit=5').catch((e) => ({ text: e.message }));
      diagnosis = `herald: ${readFileSync(herald.logPath, 'utf8').slice(-400)} messages: ${res.text?.slice(0, 600)}`;
    }
    const endAt = complete ? track.lastAt : measuredEnd;
    return {
      provider, sender: 'herald', library: `herald ${REV}`,
      seconds: (endAt - startAt) / 1000,
      delivered: track.distinct, duplicates: track.duplicates, complete,
      connections: mock.connections - conn0, auth: kind.auth(mock) - auth0,
      cpuUs: ticksToUs(sumTicks(cpu1) - sumTicks(cpu0)) / M,
      cpuByThread: Object.fromEntries(Object.entries(byThread).sort((a, b) => b[1] - a[1])),
      mockCpuUs: (self1.user + self1.system) / M, mockWallSeconds: (measuredEnd - startAt) / 1000,
      mockCpuSeconds: (self1.user + self1.system) / 1e6,
      requests: mock.requests.length, sessionErrors: sessions.errors, h2Sessions: sessions.sessions,
      lostReplyConnections: track.lostReplyConnections.size,
      duplicateSamples: track.duplicateSamples.map((d) => ({ ...d, first: { ...d.first, at: d.first.at - startAt }, again: { ...d.again, at: d.again.at - startAt } })),
      triggersAcked: acked, triggerErrors, triggerSeconds: triggerEndAt ? (triggerEndAt - startAt) / 1000 : null,
      problems: triggerProblems, diagnosis,
    };
  } finally {
    if (herald) {
      await stopChild(herald.child);
      rmSync(herald.dataDir, { recursive: true, force: true });
    }
    await closeMock(mock);
  }
}

async function measureReference(provider, pki) {
  const kind = kinds[provider];
  const mock = await kind.start(pki);
  mocks.add(mock);
  const sessions = watchSessions(mock);
  let child;
  try {
    const setup = kind.setup(mock);
    const jobPath = path.join(TMP, `job-${provider}.json`);
    writeFileSync(jobPath, JSON.stringify({
      provider, origin: mock.origin, port: mock.port, caFile: pki.ca.certPath, messages: M, concurrency: opts.concurrency,
      subscribers: setup.tokens.map((token, k) => ({ subscriberId: `sub-${k}`, token })), ...setup.job,
    }));
    child = spawn(process.execPath, [path.join(HERE, 'reference.mjs'), jobPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
    const events = [];
    let waiting = null;
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try { events.push(JSON.parse(line)); } catch { stderr += `\n${line}`; }
        waiting?.();
      }
    });
    child.on('exit', () => waiting?.());
    const nextEvent = async (name, ms) => {
      const until = Date.now() + ms;
      for (;;) {
        const e = events.find((x) => x.event === name);
        if (e) return e;
        if (child.exitCode !== null || Date.now() > until) throw new Error(`reference sender: no '${name}' (${stderr.slice(-800)})`);
        await new Promise((r) => { waiting = r; setTimeout(r, 100); });
        waiting = null;
      }
    };
    const ready = await nextEvent('ready', 30_000);

    const track = tracker(mock, kind.nOf);
    const conn0 = mock.connections;
    const auth0 = kind.auth(mock);
    const ticks0 = processTicks(child.pid);
    const self0 = process.cpuUsage();
    const goAt = Date.now();
    child.stdin.write('go\n');
    const deadline = goAt + opts.waitSeconds * 1000;
    let complete = false;
    let doneAt = 0;
    let ticks1 = NaN;
    while (Date.now() < deadline) {
      if (track.update()) { complete = true; break; }
      if (events.some((e) => e.event === 'done')) {
        doneAt ||= Date.now();
        if (Number.isNaN(ticks1)) ticks1 = processTicks(child.pid);
        if (Date.now() - doneAt > 2_000) break; // everything answered; nothing more is coming
      }
      if (child.exitCode !== null && !doneAt) break;
      await sleep(20);
    }
    const self1 = process.cpuUsage(self0);
    const measuredEnd = Date.now();
    const done = await nextEvent('done', Math.max(5_000, deadline - Date.now()));
    if (Number.isNaN(ticks1)) ticks1 = processTicks(child.pid);
    track.update();
    const startAt = done.startAt;
    const endAt = complete ? track.lastAt : measuredEnd;
    return {
      provider, sender: 'reference', library: ready.library,
      seconds: (endAt - startAt) / 1000,
      delivered: track.distinct, duplicates: track.duplicates, complete,
      connections: mock.connections - conn0, auth: kind.auth(mock) - auth0,
      cpuUs: Number.isNaN(ticks1) ? done.cpuUs / M : ticksToUs(ticks1 - ticks0) / M,
      selfReportedCpuUs: done.cpuUs / M,
      mockCpuUs: (self1.user + self1.system) / M, mockWallSeconds: (measuredEnd - goAt) / 1000,
      mockCpuSeconds: (self1.user + self1.system) / 1e6,
      requests: mock.requests.length, sessionErrors: sessions.errors, h2Sessions: sessions.sessions,
      lostReplyConnections: track.lostReplyConnections.size,
      sent: done.sent, failed: done.failed, problems: done.errors,
    };
  } finally {
    if (child) await stopChild(child, 5_000);
    await closeMock(mock);
  }
}

// ------------------------------------------------------------------------------------ run
mkdirSync(path.join(TMP, 'pki'));
const pki = await makeTlsAuthority({ dir: path.join(TMP, 'pki') });
const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const cores = os.cpus().length;
const loadBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
process.stdout.write(`bench/providers: ${M} messages per sender, ${S} subscribers with one token each, reference `
  + `concurrency ${opts.concurrency}, rev ${REV} (binary built ${BINARY.built}, sha256 ${BINARY.sha256}), ${cores} cores\n`);
const rows = [];
let failedRun = false;
for (const provider of opts.providers) {
  for (const [sender, measure] of [['herald', measureHerald], ['reference', measureReference]]) {
    process.stdout.write(`${kinds[provider].title}: ${sender === 'herald' ? 'Herald' : 'reference'} sending ${M} messages...\n`);
    let row;
    try {
      row = await measure(provider, pki);
    } catch (err) {
      row = { provider, sender, library: sender, seconds: 0, delivered: 0, duplicates: 0, complete: false, connections: 0, auth: 0, cpuUs: 0, mockCpuUs: 0, problems: [err.message] };
    }
    row.deliveriesPerS = row.seconds > 0 ? row.delivered / row.seconds : 0;
    row.connectionsPer1k = row.connections * 1000 / M;
    row.authPer1k = row.auth * 1000 / M;
    row.requestsPer1k = (row.requests ?? 0) * 1000 / M;
    row.authKind = kinds[provider].authKind;
    if (!row.complete) {
      failedRun = true;
      process.stderr.write(`bench/providers: ${provider} ${sender}: ${row.delivered} of ${M} delivered. ${(row.problems ?? []).join(' | ')} ${row.diagnosis ?? ''}\n`);
    }
    process.stdout.write(`  ${row.delivered}/${M} in ${row.seconds.toFixed(2)} s: ${Math.round(row.deliveriesPerS)}/s, `
      + `${row.connections} connections, ${row.requests ?? 0} requests, ${row.auth} ${row.authKind}, ${row.cpuUs.toFixed(1)} µs CPU/message\n`);
    rows.push(row);
  }
  const h = rows.find((r) => r.provider === provider && r.sender === 'herald');
  const ref = rows.find((r) => r.provider === provider && r.sender === 'reference');
  h.ratio = ref?.deliveriesPerS > 0 ? h.deliveriesPerS / ref.deliveriesPerS : null;
}

// --------------------------------------------------------------------------------- report
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;
const fmt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const lines = [
  '',
  '| Provider | Sender | Messages | Seconds | Deliveries/s | Connections/1k | Requests/1k | Auth/1k | CPU µs/message | Mock CPU µs/message | Herald ÷ reference |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const r of rows) {
  lines.push(`| ${kinds[r.provider].title} | ${r.library}${r.complete ? '' : ' (incomplete)'} | ${r.delivered}/${M} | ${r.seconds.toFixed(2)} | `
    + `${fmt(r.deliveriesPerS)} | ${r2(r.connectionsPer1k)} | ${r2(r.requestsPer1k)} | ${r2(r.authPer1k)} (${r.authKind}) | ${r1(r.cpuUs)} | ${r1(r.mockCpuUs)} | `
    + `${r.sender === 'herald' && r.ratio ? r2(r.ratio) : ''} |`);
}
lines.push('');
for (const r of rows.filter((x) => x.sender === 'herald' && x.cpuByThread)) {
  lines.push(`${kinds[r.provider].title}: Herald CPU by thread (µs/message): ${Object.entries(r.cpuByThread).map(([k, v]) => `${k} ${v}`).join(', ')}; `
    + `mock requests ${r.requests} for ${r.delivered} delivered + ${r.duplicates} duplicates (first copies on `
    + `${r.lostReplyConnections} connections, whose replies were lost); mock HTTP/2 sessions ${r.h2Sessions}`
    + `${Object.keys(r.sessionErrors ?? {}).length ? ` (ended with errors: ${JSON.stringify(r.sessionErrors)})` : ''}; `
    + `mock process busy ${r2(r.mockCpuSeconds / r.mockWallSeconds)} of one core`);
}
for (const r of rows.filter((x) => x.sender === 'reference')) {
  lines.push(`${kinds[r.provider].title}: reference ${r.library}: ${r.sent ?? 0} sent, ${r.failed ?? 0} failed; mock requests ${r.requests}; `
    + `${r.duplicates ?? 0} duplicates; mock HTTP/2 sessions ${r.h2Sessions ?? 0}; mock process busy ${r.mockWallSeconds ? r2(r.mockCpuSeconds / r.mockWallSeconds) : 0} of one core`
    + `${r.problems?.length ? `; errors: ${r.problems.join(' | ')}` : ''}`);
}
const loadAfter = os.loadavg().map((x) => Math.round(x * 100) / 100);
lines.push(`${M} messages per sender, ${S} subscribers, reference concurrency ${opts.concurrency}, ${cores} cores, rev ${REV}, ${when}; `
  + `load average (1, 5, 15 min) ${loadBefore.join(' ')} before, ${loadAfter.join(' ')} after`);
process.stdout.write(`${lines.join('\n')}\n`);

const summary = {
  when, rev: REV, cores, messages: M, subscribers: S, concurrency: opts.concurrency,
  herald_binary: BINARY, load_average_before: loadBefore, load_average_after: loadAfter,
  rows: rows.map((r) => ({
    provider: r.provider, sender: r.sender, library: r.library, messages: M, delivered: r.delivered,
    duplicates: r.duplicates, complete: r.complete, seconds: r2(r.seconds), deliveries_per_s: r1(r.deliveriesPerS),
    connections: r.connections, connections_per_1k: r2(r.connectionsPer1k), requests_per_1k: r2(r.requestsPer1k),
    auth: r.auth, auth_per_1k: r2(r.authPer1k),
    auth_kind: r.authKind, cpu_us_per_message: r1(r.cpuUs), mock_cpu_us_per_message: r1(r.mockCpuUs),
    mock_busy: r.mockWallSeconds ? r2(r.mockCpuSeconds / r.mockWallSeconds) : null,
    mock_requests: r.requests ?? null, h2_sessions: r.h2Sessions ?? null, connections_lost_replies: r.lostReplyConnections ?? null,
    session_errors: r.sessionErrors ?? {},
    ...(r.sender === 'herald' ? {
      ratio_to_reference: r.ratio == null ? null : Math.round(r.ratio * 1000) / 1000, cpu_by_thread: r.cpuByThread,
      duplicate_samples: r.duplicateSamples,
      triggers_acked: r.triggersAcked, trigger_errors: r.triggerErrors, trigger_seconds: r.triggerSeconds,
    } : { sent: r.sent, failed: r.failed }),
    ...(r.problems?.length ? { problems: r.problems } : {}),
  })),
};
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (process.env.RESULT_JSON) writeFileSync(process.env.RESULT_JSON, `${JSON.stringify(summary)}\n`);

// One CSV row per sender. A day's file written with other columns is left as it is: the rows go
// to the day's next file (DATE-providers-2.csv, ...), as run.sh does.
const COLUMNS = ['when', 'rev', 'cores', 'provider', 'sender', 'library', 'messages', 'subscribers', 'concurrency',
  'delivered', 'duplicates', 'complete', 'seconds', 'deliveries_per_s', 'ratio_to_reference', 'connections',
  'connections_per_1k', 'auth', 'auth_per_1k', 'auth_kind', 'cpu_us_per_message', 'mock_cpu_us_per_message',
  'mock_busy', 'mock_requests', 'h2_sessions', 'connections_lost_replies', 'requests_per_1k'];
const header = COLUMNS.join(',');
mkdirSync(RESULTS_DIR, { recursive: true });
const day = when.slice(0, 10);
let csv = path.join(RESULTS_DIR, `${day}-providers.csv`);
for (let n = 2; n < 100; n++) {
  if (!existsSync(csv) || statSync(csv).size === 0 || readFileSync(csv, 'utf8').split('\n')[0] === header) break;
  csv = path.join(RESULTS_DIR, `${day}-providers-${n}.csv`);
}
if (!existsSync(csv) || statSync(csv).size === 0) writeFileSync(csv, `${header}\n`);
const cell = (v) => {
  if (v === null || v === undefined || v === '') return '';
  const s = String(v);
  return /^-?[0-9.]+$/.test(s) || s === 'true' || s === 'false' ? s : `"${s.replace(/"/g, '""')}"`;
};
for (const r of summary.rows) {
  const row = { ...r, when, rev: REV, cores, subscribers: S, concurrency: r.sender === 'reference' ? opts.concurrency : '' };
  appendFileSync(csv, `${COLUMNS.map((c) => cell(row[c])).join(',')}\n`);
}
process.stdout.write(`appended ${summary.rows.length} rows to ${path.relative(process.cwd(), csv) || csv}\n`);

for (const m of [...mocks]) await closeMock(m);
keepAlive.destroy();
pki.cleanup();
if (failedRun) {
  process.stderr.write('bench/providers: incomplete run (missing deliveries or errors); see above\n');
  process.exit(1);
}
process.exit(0);
