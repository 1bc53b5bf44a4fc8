#!/usr/bin/env node
// Provider delivery benchmark on loopback. For Web Push, APNs and FCM, three rows each against a
// mock that is not the bottleneck (herald_bench_h2mock: C++ on libnghttp2, cleartext h2c and
// HTTP/1.1, a few µs of CPU per request; a fresh instance per row, MOCK_THREADS threads):
//
//   Herald:    triggers (bulk, 100 events a request) ──▶ herald ──h2c / HTTP/1.1──▶ h2mock
//   reference: the provider's Node library (a child process: reference.mjs) ──────▶ h2mock
//   ceiling:   APNs, FCM: h2load (the transport ceiling: HTTP/2 requests of the same size and
//              headers as Herald's, at the best -c/-m found) ─────────────────────▶ h2mock
//              Web Push: `herald_bench_crypto --webpush-ceiling` on 2 threads, no network: only
//              Herald's RFC 8291 encryption per message and the reused VAPID header
//
// The references: web-push (sendNotification, CONCURRENCY in flight), @parse/node-apn (h2c
// through its `createConnection` option, one session multiplexing CONCURRENCY sends),
// firebase-admin (sendEach, 500 a call; HTTP/1.1 through an https.Agent dialling the mock, or
// FCM_TRANSPORT=h2 for its HTTP/2 path); see reference.mjs. Expo stays on its Node mock over TLS
// (src/providers/expo/expo_mock.mjs) with expo-server-sdk, Herald and reference rows only.
//
// For each Herald row: a fresh Herald (copied BUILD_DIR/herald, temporary data directory,
// loopback port), the integration pointing at the mock (APNs and FCM baseUrl http://127.0.0.1:PORT,
// the FCM service account's token_uri http://127.0.0.1:PORT/token, Web Push subscriptions
// http://127.0.0.1:PORT/wp/<k> with real P-256 keys), SUBSCRIBERS subscribers with one device
// token each, a workflow with one push step, MESSAGES triggers (one message each; Web Push
// triggers carry overrides.providers['web-push'].topic = n<i>). Measured from the first trigger
// sent (or the reference's first send) until the mock has accepted a push for every message: the
// mock keys pushes by body (APNs, FCM) or `topic` header (Web Push) and stamps the last new key.
//
// Columns: deliveries/s (MESSAGES ÷ that time; ceilings: h2load's requests ÷ its run time, the
// crypto loop's messages/s); Herald ÷ reference and ÷ ceiling; connections per 1,000 messages
// (connections that carried a push or token request); auth per 1,000 (APNs, Web Push: distinct
// authorization headers; FCM: token exchanges; Expo: distinct access tokens); requests per 1,000;
// CPU µs per message (Herald: all its threads, intake, store, planning, sending; reference: its
// process; h2load and the crypto loop: theirs); the mock's CPU µs per request it answered
// (/proc/PID/stat); duplicates (pushes accepted again for a key already accepted).
//
// Prints a table and the JSON summary, appends one CSV row per row to
// RESULTS_DIR/<UTC date>-providers.csv (a day's file with other columns is left alone: the rows go
// to <date>-providers-2.csv, ...). Builds nothing; every step is bounded in time; every process it
// starts is stopped and every temporary directory removed on exit.
//
// Usage: node bench/providers/run.mjs [--messages N] [--subscribers S] [--concurrency C]
//            [--providers web-push,apns,fcm,expo] [--mock-threads T]
// Env:   MESSAGES (20000) SUBSCRIBERS (100) CONCURRENCY (the references' requests in flight;
//        default per library, its best here: 64 for web-push (of 64, 256), node-apn (of 64,
//        128, 256, 1000; 2 sessions no better), firebase-admin's sockets (of 64, 256);
//        expo-server-sdk keeps its own 6) PROVIDERS (web-push,apns,fcm,expo)
//        MOCK_THREADS (1: leaves a core to the sender) FCM_TRANSPORT (http1 | h2)
//        APNS_SESSIONS (1: node-apn Provider; >1: MultiProvider clientCount)
//        H2LOAD_REQUESTS (200000) H2LOAD_CLIENTS (4) H2LOAD_STREAMS (100) CRYPTO_SECONDS (3)
//        BUILD_DIR (build) RESULTS_DIR (bench/results) REV (the checkout's short commit)
//        WAIT_SECONDS (120: per row, from the first trigger/send to the last delivery)
//        MAX_SECONDS (900: the whole run) RESULT_JSON (if set, the JSON summary is written there)
//
// RESULT_JSON (and the JSON printed last), one object:
//   {when, rev, cores, messages, subscribers, mock_threads, herald_binary: {path, built, sha256},
//    load_average_before, load_average_after, rows: [ROW...]}
//   ROW: {provider: 'web-push'|'apns'|'fcm'|'expo', sender: 'herald'|'reference'|'ceiling',
//         library, transport (Herald's: what the mock saw its engine speak), concurrency, messages, delivered, complete, seconds,
//         deliveries_per_s, ratio_to_reference (herald rows), ratio_to_ceiling (herald and
//         reference rows; null for Expo), connections, connections_per_1k, auth, auth_per_1k,
//         auth_kind, requests_per_1k, cpu_us_per_message, mock_cpu_us_per_request,
//         mock_cpu_us_per_message, mock_busy (share of one core), duplicates,
//         mock: {h2_connections, http1_connections, rejected, by_status, body_bytes_avg, ...},
//         herald rows: cpu_by_thread {thread: µs/message}, triggers_acked, trigger_errors,
//         trigger_seconds; reference rows: sent, failed, settings; ceiling rows: h2load {command,
//         clients, streams, requests, succeeded, seconds} or crypto {threads, plaintext_bytes,
//         ...}; problems (if any)}
//   Fields that do not apply are null (e.g. a ceiling row's duplicates, connections, auth).
//   providers: [{provider, label, herald: ROW, reference: ROW, ceiling: ROW + {name, per_s} | null}]:
//   the same rows grouped by provider (what bench/run_all.mjs reads).
//   Expo's mock_cpu_us_per_message is this process's CPU (the Node mock runs in it, with the
//   polling and, in Herald's row, the triggers); its mock_cpu_us_per_request is null.
import { spawn, execFileSync } from 'node:child_process';
import { createECDH, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureExpo, expoKind } from './expo.mjs';
import {
  HOST, api, children, closeMock, cpuByThread, fail, keepAlive, mocks, processTicks, request, runTimed, setupHerald,
  sleep, stableCopy, startHerald, startReference, stopChild, sumTicks, ticksToUs, trigger,
} from './support.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BUNDLE = 'com.example.herald.bench';
const PROVIDERS = ['web-push', 'apns', 'fcm', 'expo'];

// ------------------------------------------------------------------------------------ options
const opts = {
  messages: process.env.MESSAGES ?? '20000',
  subscribers: process.env.SUBSCRIBERS ?? '100',
  concurrency: process.env.CONCURRENCY ?? '',
  providers: process.env.PROVIDERS ?? PROVIDERS.join(','),
  mockThreads: process.env.MOCK_THREADS ?? '1',
  waitSeconds: process.env.WAIT_SECONDS ?? '120',
  maxSeconds: process.env.MAX_SECONDS ?? '900',
  h2loadRequests: process.env.H2LOAD_REQUESTS ?? '200000',
  h2loadClients: process.env.H2LOAD_CLIENTS ?? '4',
  h2loadStreams: process.env.H2LOAD_STREAMS ?? '100',
  cryptoSeconds: process.env.CRYPTO_SECONDS ?? '3',
  apnsSessions: process.env.APNS_SESSIONS ?? '1',
};
const fcmTransport = process.env.FCM_TRANSPORT ?? 'http1';
if (!['http1', 'h2'].includes(fcmTransport)) fail(`FCM_TRANSPORT must be http1 or h2, got '${fcmTransport}'`);
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  const key = {
    '--messages': 'messages', '--subscribers': 'subscribers', '--concurrency': 'concurrency',
    '--providers': 'providers', '--mock-threads': 'mockThreads',
  }[flag];
  if (flag === '-h' || flag === '--help') {
    const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
    process.stdout.write(`${text.slice(0, text.findIndex((l) => !l.startsWith('//')))
      .map((l) => l.replace(/^\/\/ ?/, '')).join('\n')}\n`);
    process.exit(0);
  }
  if (!key || argv[i + 1] === undefined) fail(`unknown argument '${flag}' (see --help)`);
  opts[key] = argv[++i];
}
for (const k of ['messages', 'subscribers', 'mockThreads', 'waitSeconds', 'maxSeconds', 'h2loadRequests',
  'h2loadClients', 'h2loadStreams', 'cryptoSeconds', 'apnsSessions', ...(opts.concurrency ? ['concurrency'] : [])]) {
  if (!/^[1-9][0-9]*$/.test(opts[k])) fail(`${k} must be a positive integer, got '${opts[k]}'`);
  opts[k] = Number(opts[k]);
}
opts.providers = opts.providers.split(',').map((s) => s.trim()).filter(Boolean);
for (const p of opts.providers) if (!PROVIDERS.includes(p)) fail(`unknown provider '${p}' (${PROVIDERS.join(', ')})`);
const M = opts.messages;
const S = Math.min(opts.subscribers, M);
// The references' requests in flight: the best of what was tried on the 2-core box (bench/README.md).
const REFERENCE_CONCURRENCY = { 'web-push': 64, apns: 64, fcm: 64, expo: 6 };
const concurrencyOf = (provider) => (provider === 'expo' ? 6 : (opts.concurrency || REFERENCE_CONCURRENCY[provider]));
const BUILD_DIR = path.resolve(ROOT, process.env.BUILD_DIR ?? 'build');
const RESULTS_DIR = path.resolve(ROOT, process.env.RESULTS_DIR ?? 'bench/results');
const HERALD_SRC = path.join(BUILD_DIR, 'herald');
const H2MOCK_SRC = path.join(BUILD_DIR, 'herald_bench_h2mock');
const CRYPTO_SRC = path.join(BUILD_DIR, 'herald_bench_crypto');
const usesH2Mock = opts.providers.some((p) => p !== 'expo');
const build = `  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHERALD_BUILD_BENCH=ON\n  cmake --build build --target herald herald_bench_h2mock herald_bench_crypto`;
for (const [file, needed] of [[HERALD_SRC, true], [H2MOCK_SRC, usesH2Mock], [CRYPTO_SRC, opts.providers.includes('web-push')]]) {
  if (needed && !existsSync(file)) fail(`${file} not found. Build first (from ${ROOT}):\n${build}`);
}
if (!existsSync(path.join(ROOT, 'test/e2e/node_modules/web-push'))) {
  fail('test/e2e/node_modules is missing: run scripts/install-deps.sh --bench (or cd test/e2e && npm ci)');
}
let h2loadBin = null;
if (opts.providers.includes('apns') || opts.providers.includes('fcm')) {
  try {
    h2loadBin = execFileSync('sh', ['-c', 'command -v h2load'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch { /* not installed */ }
  if (!h2loadBin) process.stderr.write('bench/providers: h2load not found (apt-get install nghttp2-client): no APNs/FCM ceiling rows\n');
}

// ------------------------------------------------------------------ processes and cleanup
const TMP = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-providers.'));
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

const REV = process.env.REV || (() => {
  try { return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return 'unknown'; }
})();

const heraldCopy = await stableCopy(HERALD_SRC, path.join(TMP, 'herald'));
const HERALD_BIN = heraldCopy.path;
const H2MOCK_BIN = usesH2Mock ? (await stableCopy(H2MOCK_SRC, path.join(TMP, 'herald_bench_h2mock'))).path : null;
const CRYPTO_BIN = opts.providers.includes('web-push') ? (await stableCopy(CRYPTO_SRC, path.join(TMP, 'herald_bench_crypto'))).path : null;
// Which binary was measured (REV names the checkout, which may have moved on since the build).
const BINARY = {
  path: HERALD_SRC, built: heraldCopy.built.toISOString().replace(/\.\d+Z$/, 'Z'),
  sha256: createHash('sha256').update(readFileSync(HERALD_BIN)).digest('hex').slice(0, 16),
};
let pki = null;
if (opts.providers.includes('expo')) {
  const { makeTlsAuthority } = await import('../../test/e2e/tls_authority.mjs');
  mkdirSync(path.join(TMP, 'pki'));
  pki = await makeTlsAuthority({ dir: path.join(TMP, 'pki') });
}
// What support.mjs and expo.mjs need of this run.
const bench = { tmp: TMP, heraldBin: HERALD_BIN, messages: M, subscribers: S, waitSeconds: opts.waitSeconds, rev: REV, pki };

// ------------------------------------------------------------------------- the C++ mock
async function startH2Mock() {
  const child = spawn(H2MOCK_BIN, ['--listen', `${HOST}:0`, '--threads', String(opts.mockThreads),
    '--max-seconds', String(opts.maxSeconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('herald_bench_h2mock did not start within 10 s')), 10_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^listening (\d+)\n/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`herald_bench_h2mock exited (${code}): ${stderr}`)); });
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const mock = {
    kind: 'h2mock', child, pid: child.pid, port, origin: `http://${HOST}:${port}`,
    /** GET /stats (JSON). */
    async stats() {
      const res = await request(port, 'GET', '/stats', undefined, { agent, timeout: 10_000 });
      if (res.status !== 200 || !res.json) throw new Error(`mock /stats answered ${res.status}: ${res.text.slice(0, 200)}`);
      return res.json;
    },
    close: async () => { agent.destroy(); await stopChild(child, 3_000); },
  };
  mocks.add(mock);
  return mock;
}

/** The mock's counters between two /stats snapshots, as a row's fields. */
function mockDelta(kind, s0, s1, ticks, messages) {
  const d = (pick) => pick(s1) - pick(s0);
  const requests = d((s) => s.requests);
  const routeAccepted = d((s) => s.by_route[kind.route]);
  const statuses = {};
  for (const [code, n] of Object.entries(s1.by_status)) {
    const v = n - (s0.by_status[code] ?? 0);
    if (v) statuses[code] = v;
  }
  return {
    delivered: d((s) => s.distinct_messages),
    duplicates: d((s) => s.duplicates),
    connections: d((s) => s.push_connections),
    auth: kind.auth(s1) - kind.auth(s0),
    requests,
    mockCpuUsPerRequest: requests > 0 ? ticksToUs(ticks) / requests : null,
    mockCpuUsPerMessage: ticksToUs(ticks) / messages,
    mock: {
      h2_connections: d((s) => s.h2_connections), http1_connections: d((s) => s.http1_connections),
      accepted: d((s) => s.accepted), rejected: d((s) => s.rejected), by_status: statuses,
      body_bytes_avg: routeAccepted > 0 ? Math.round(d((s) => s.body_bytes[kind.route]) / routeAccepted) : null,
      token_requests: d((s) => s.by_route.token), rst_stream_received: d((s) => s.rst_stream_received),
      goaway_received: d((s) => s.goaway_received), protocol_errors: d((s) => s.protocol_errors),
    },
  };
}

/** What the sender spoke, as the mock saw it (Herald's engine decides; the token endpoint aside). */
function transportOf(m) {
  const http1 = m.http1_connections - Math.min(m.http1_connections, m.token_requests);
  if (m.h2_connections > 0 && http1 === 0) return 'h2c';
  if (m.h2_connections === 0) return 'HTTP/1.1';
  return `h2c + HTTP/1.1 (${m.h2_connections} + ${http1} connections)`;
}

// ---------------------------------------------------------------------------------- kinds
/** A P-256 key pair as raw base64url (65-byte uncompressed public point, 32-byte scalar). */
function p256Raw() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const priv = ecdh.getPrivateKey();
  return {
    publicKey: ecdh.getPublicKey().toString('base64url'),
    privateKey: Buffer.concat([Buffer.alloc(32 - priv.length), priv]).toString('base64url'),
  };
}

// Each provider: the mock's route, how to make credentials and device tokens for a mock, what
// counts as auth, and what the ceiling row runs.
const kinds = {
  'web-push': {
    title: 'Web Push', route: 'webpush', authKind: 'distinct VAPID headers',
    setup(mock) {
      const vapid = p256Raw();
      const subject = 'mailto:bench@example.com';
      const tokens = Array.from({ length: S }, (_, k) => JSON.stringify({
        endpoint: `${mock.origin}/wp/${k}`,
        keys: { p256dh: p256Raw().publicKey, auth: randomBytes(16).toString('base64url') },
      }));
      return {
        tokens,
        integration: { providerId: 'web-push', credentials: { apiKey: vapid.publicKey, secretKey: vapid.privateKey, from: subject } },
        job: { vapid: { subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey } },
      };
    },
    // The mock's key for duplicates: a topic per message.
    eventExtra: (i) => ({ overrides: { providers: { 'web-push': { topic: `n${i}` } } } }),
    auth: (s) => s.distinct_auth,
  },
  apns: {
    title: 'APNs', route: 'apns', authKind: 'distinct provider JWTs',
    setup(mock) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
      const keyId = 'BENCHKEY01';
      const teamId = 'BENCHTEAM1';
      return {
        tokens: Array.from({ length: S }, () => randomBytes(32).toString('hex')),
        integration: {
          providerId: 'apns',
          credentials: { secretKey: privateKeyPem, apiKey: keyId, projectName: teamId, applicationId: BUNDLE, baseUrl: mock.origin },
        },
        job: { apns: { privateKeyPem, keyId, teamId, topic: BUNDLE, clients: opts.apnsSessions } },
      };
    },
    auth: (s) => s.distinct_auth,
  },
  fcm: {
    title: 'FCM', route: 'fcm', authKind: 'token exchanges',
    setup(mock) {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const account = JSON.stringify({
        type: 'service_account', project_id: 'herald-bench', private_key_id: randomBytes(20).toString('hex'),
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        client_email: 'bench@herald-bench.iam.gserviceaccount.com', client_id: '1',
        token_uri: `${mock.origin}/token`,
      });
      return {
        tokens: Array.from({ length: S }, (_, k) => `bench-${k}:${randomBytes(40).toString('base64url')}`),
        integration: { providerId: 'fcm', credentials: { serviceAccount: account, baseUrl: mock.origin } },
        job: { fcm: { serviceAccount: account, transport: fcmTransport } },
      };
    },
    auth: (s) => s.by_route.token,
  },
};

// ------------------------------------------------------------------------- rows: h2mock
async function measureHerald(provider) {
  const kind = kinds[provider];
  const mock = await startH2Mock();
  let herald;
  try {
    const setup = kind.setup(mock);
    herald = await startHerald(bench, null, provider);
    await setupHerald(herald, setup.integration, setup.tokens);
    const s0 = await mock.stats();
    const mockTicks0 = processTicks(mock.pid);
    const cpu0 = cpuByThread(herald.pid);
    const startAt = Date.now();
    const t = trigger(bench, herald, kind.eventExtra);
    const deadline = startAt + opts.waitSeconds * 1000;
    let complete = false;
    let s = s0;
    while (Date.now() < deadline) {
      s = await mock.stats();
      if (s.distinct_messages - s0.distinct_messages >= M) { complete = true; break; }
      if (herald.child.exitCode !== null) break;
      if (t.finished && t.acked === 0) break;
      await sleep(25);
    }
    const cpu1 = cpuByThread(herald.pid);
    const mockTicks1 = processTicks(mock.pid);
    const measuredEnd = Date.now();
    await t.done;
    await sleep(300); // late duplicates, if any
    const s1 = await mock.stats();
    const byThread = {};
    for (const [name, ticks] of Object.entries(cpu1)) {
      const used = ticks - (cpu0[name] ?? 0);
      if (used > 0) byThread[name] = Math.round(ticksToUs(used) / M);
    }
    let diagnosis;
    if (!complete) {
      const res = await api(herald, 'GET', '/v1/messages?limit=5').catch((e) => ({ text: e.message }));
      diagnosis = `herald: ${readFileSync(herald.logPath, 'utf8').slice(-400)} messages: ${res.text?.slice(0, 600)} mock: ${JSON.stringify(s1).slice(0, 600)}`;
    }
    const endAt = complete ? s.distinct_last_at_us / 1000 : measuredEnd;
    const delta = mockDelta(kind, s0, s1, mockTicks1 - mockTicks0, M);
    return {
      provider, sender: 'herald', library: `herald ${REV}`, transport: transportOf(delta.mock),
      concurrency: null, seconds: (endAt - startAt) / 1000, complete, ...delta,
      mockBusy: ticksToUs(mockTicks1 - mockTicks0) / 1e6 / ((measuredEnd - startAt) / 1000),
      cpuUs: ticksToUs(sumTicks(cpu1) - sumTicks(cpu0)) / M,
      cpuByThread: Object.fromEntries(Object.entries(byThread).sort((a, b) => b[1] - a[1])),
      triggersAcked: t.acked, triggerErrors: t.errors, triggerSeconds: t.endAt ? (t.endAt - startAt) / 1000 : null,
      problems: t.problems, diagnosis,
    };
  } finally {
    if (herald) {
      await stopChild(herald.child);
      rmSync(herald.dataDir, { recursive: true, force: true });
    }
    await closeMock(mock);
  }
}

async function measureReference(provider) {
  const kind = kinds[provider];
  const mock = await startH2Mock();
  let ref;
  try {
    const setup = kind.setup(mock);
    ref = await startReference(bench, {
      provider, host: HOST, port: mock.port, origin: mock.origin, messages: M, concurrency: concurrencyOf(provider),
      subscribers: setup.tokens.map((token, k) => ({ subscriberId: `sub-${k}`, token })), ...setup.job,
    });
    const s0 = await mock.stats();
    const mockTicks0 = processTicks(mock.pid);
    const ticks0 = processTicks(ref.pid);
    const goAt = Date.now();
    ref.go();
    const deadline = goAt + opts.waitSeconds * 1000;
    let complete = false;
    let doneAt = 0;
    let ticks1 = NaN;
    let s = s0;
    while (Date.now() < deadline) {
      s = await mock.stats();
      if (s.distinct_messages - s0.distinct_messages >= M) { complete = true; break; }
      if (ref.isDone()) {
        doneAt ||= Date.now();
        if (Number.isNaN(ticks1)) ticks1 = processTicks(ref.pid);
        if (Date.now() - doneAt > 2_000) break; // everything answered; nothing more is coming
      }
      if (ref.child.exitCode !== null && !doneAt) break;
      await sleep(25);
    }
    const mockTicks1 = processTicks(mock.pid);
    const measuredEnd = Date.now();
    const done = await ref.done(Math.max(5_000, deadline - Date.now()));
    if (Number.isNaN(ticks1)) ticks1 = processTicks(ref.pid);
    const s1 = await mock.stats();
    const endAt = complete ? s.distinct_last_at_us / 1000 : measuredEnd;
    return {
      provider, sender: 'reference', library: ref.ready.library, transport: ref.ready.settings?.transport ?? null,
      concurrency: concurrencyOf(provider), settings: ref.ready.settings,
      seconds: (endAt - done.startAt) / 1000, complete,
      ...mockDelta(kind, s0, s1, mockTicks1 - mockTicks0, M),
      mockBusy: ticksToUs(mockTicks1 - mockTicks0) / 1e6 / ((measuredEnd - goAt) / 1000),
      cpuUs: Number.isNaN(ticks1) ? done.cpuUs / M : ticksToUs(ticks1 - ticks0) / M,
      sent: done.sent, failed: done.failed, problems: done.errors,
    };
  } finally {
    if (ref) await stopChild(ref.child, 5_000);
    await closeMock(mock);
  }
}

/** A JSON object of exactly `size` bytes (at least the prefix's), ending in a padding member. */
function jsonOfSize(prefix, size) {
  const base = `${prefix},"pad":""}`;
  return base.length >= size ? `${prefix}}` : `${prefix},"pad":"${'x'.repeat(size - base.length)}"}`;
}

/** The transport ceiling: h2load's APNs- or FCM-shaped requests (Herald's body size) at the mock. */
async function measureH2load(provider, heraldRow) {
  const kind = kinds[provider];
  const mock = await startH2Mock();
  try {
    const n = opts.h2loadRequests;
    const size = heraldRow?.mock?.body_bytes_avg ?? (provider === 'apns' ? 120 : 190);
    const bodyPath = path.join(TMP, `h2load-${provider}.json`);
    let urlPath;
    let headers;
    if (provider === 'apns') {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const input = `${Buffer.from('{"alg":"ES256","kid":"BENCHKEY01"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'BENCHTEAM1', iat: Math.floor(Date.now() / 1000) })).toString('base64url')}`;
      const jwt = `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
      writeFileSync(bodyPath, jsonOfSize('{"aps":{"alert":{"title":"Hi sub-1","body":"n=12345"}}', size));
      urlPath = `/3/device/${randomBytes(32).toString('hex')}`;
      headers = [`authorization: bearer ${jwt}`, `apns-topic: ${BUNDLE}`, 'apns-push-type: alert',
        'content-type: application/json', 'apns-id: 00000000-0000-0000-0000-65f000012345'];
    } else {
      const res = await request(mock.port, 'POST', '/token',
        'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=h2load.assertion.x',
        { headers: { 'content-type': 'application/x-www-form-urlencoded' }, agent: false, timeout: 10_000 });
      if (res.status !== 200) throw new Error(`mock /token answered ${res.status}`);
      writeFileSync(bodyPath, jsonOfSize(`{"message":{"token":"bench-1:${randomBytes(40).toString('base64url')}","notification":{"title":"Hi sub-1","body":"n=12345"}}`, size));
      urlPath = '/v1/projects/herald-bench/messages:send';
      headers = [`authorization: Bearer ${res.json.access_token}`, 'content-type: application/json'];
    }
    const args = ['-n', String(n), '-c', String(opts.h2loadClients), '-m', String(opts.h2loadStreams), '-t', '1',
      ...headers.flatMap((h) => ['-H', h]), '-d', bodyPath, `${mock.origin}${urlPath}`];
    const s0 = await mock.stats();
    const mockTicks0 = processTicks(mock.pid);
    const run = await runTimed(h2loadBin, args, 120_000);
    const mockTicks1 = processTicks(mock.pid);
    const s1 = await mock.stats();
    const fin = run.stdout.match(/finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/);
    const req = run.stdout.match(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/);
    const seconds = fin ? Number(fin[1]) / (fin[2] === 'ms' ? 1000 : 1) : 0;
    const succeeded = req ? Number(req[4]) : 0;
    const delta = mockDelta(kind, s0, s1, mockTicks1 - mockTicks0, n);
    return {
      provider, sender: 'ceiling', library: `h2load ${execFileSync(h2loadBin, ['--version']).toString().match(/nghttp2\/([\d.]+)/)?.[1] ?? ''}`.trim(),
      transport: 'h2c', concurrency: opts.h2loadClients * opts.h2loadStreams,
      seconds, complete: run.code === 0 && succeeded === n, deliveriesPerSOverride: seconds > 0 ? succeeded / seconds : 0,
      delivered: succeeded, duplicates: null, connections: null, auth: null, requests: delta.requests,
      mockCpuUsPerRequest: delta.mockCpuUsPerRequest, mockCpuUsPerMessage: delta.mockCpuUsPerRequest, mock: delta.mock,
      mockBusy: seconds > 0 ? ticksToUs(mockTicks1 - mockTicks0) / 1e6 / seconds : null,
      cpuUs: run.cpuUs / n,
      h2load: { command: `h2load ${args.map((a) => (/[\s']/.test(a) ? `'${a}'` : a)).join(' ').replace(/bearer [\w.-]+/i, 'bearer <JWT>')}`, clients: opts.h2loadClients, streams: opts.h2loadStreams, requests: n, succeeded, seconds, body_bytes: size },
      problems: run.code === 0 && succeeded === n ? [] : [`h2load exit ${run.code}: ${run.stdout.slice(-400)} ${run.stderr.slice(-300)}`],
    };
  } finally {
    await closeMock(mock);
  }
}

/** The Web Push crypto ceiling: Herald's RFC 8291 encryption + the reused VAPID header, 2 threads. */
async function measureCrypto(heraldRow) {
  const body = heraldRow?.mock?.body_bytes_avg;
  const plaintext = body ? Math.max(0, body - 103) : 160; // 86-byte header, 0x02 delimiter, 16-byte tag
  const args = ['--webpush-ceiling', '--threads', '2', '--seconds', String(opts.cryptoSeconds), '--plaintext-bytes', String(plaintext)];
  const run = await runTimed(CRYPTO_BIN, args, (opts.cryptoSeconds + 30) * 1000);
  let out = null;
  try { out = JSON.parse(run.stdout.split('\n').find((l) => l.startsWith('{')) ?? 'null'); } catch { /* below */ }
  return {
    provider: 'web-push', sender: 'ceiling', library: 'herald_bench_crypto --webpush-ceiling', transport: null,
    concurrency: out?.threads ?? 2, seconds: out?.seconds ?? 0, complete: run.code === 0 && !!out,
    deliveriesPerSOverride: out?.messages_per_s ?? 0, delivered: out?.messages ?? 0,
    duplicates: null, connections: null, auth: null, requests: null,
    mockCpuUsPerRequest: null, mockCpuUsPerMessage: null, mockBusy: null,
    cpuUs: out?.cpu_us_per_message ?? NaN,
    crypto: out ? { ...out, command: `herald_bench_crypto ${args.join(' ')}` } : null,
    problems: run.code === 0 && out ? [] : [`herald_bench_crypto exit ${run.code}: ${run.stderr.slice(-300)}`],
  };
}

// ------------------------------------------------------------------------------------ run
const TITLES = { 'web-push': 'Web Push', apns: 'APNs', fcm: 'FCM', expo: 'Expo' };
const AUTH_KINDS = { 'web-push': kinds['web-push'].authKind, apns: kinds.apns.authKind, fcm: kinds.fcm.authKind, expo: expoKind.authKind };
const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const cores = os.cpus().length;
const loadBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
process.stdout.write(`bench/providers: ${M} messages per sender, ${S} subscribers with one token each, mock threads `
  + `${opts.mockThreads}, rev ${REV} (binary built ${BINARY.built}, sha256 ${BINARY.sha256}), ${cores} cores\n`);
const rows = [];
let failedRun = false;
const LABEL = { herald: 'Herald', reference: 'reference', ceiling: 'ceiling' };
for (const provider of opts.providers) {
  const plan = provider === 'expo'
    ? [['herald', () => measureExpo(bench, 'herald')], ['reference', () => measureExpo(bench, 'reference')]]
    : [['herald', () => measureHerald(provider)], ['reference', () => measureReference(provider)],
      ...(provider === 'web-push' ? [['ceiling', (h) => measureCrypto(h)]]
        : h2loadBin ? [['ceiling', (h) => measureH2load(provider, h)]] : [])];
  let heraldRow = null;
  for (const [sender, measure] of plan) {
    process.stdout.write(`${TITLES[provider]}: ${LABEL[sender]}...\n`);
    let row;
    try {
      row = await measure(heraldRow);
    } catch (err) {
      row = { provider, sender, library: sender, seconds: 0, delivered: 0, duplicates: 0, complete: false, connections: 0, auth: 0, cpuUs: NaN, problems: [err.message] };
    }
    if (sender === 'herald') heraldRow = row;
    row.messages = sender === 'ceiling' ? row.delivered : M;
    row.deliveriesPerS = row.deliveriesPerSOverride ?? (row.seconds > 0 ? row.delivered / row.seconds : 0);
    row.connectionsPer1k = row.connections == null ? null : row.connections * 1000 / M;
    row.authPer1k = row.auth == null ? null : row.auth * 1000 / M;
    row.requestsPer1k = row.requests == null || sender === 'ceiling' ? null : row.requests * 1000 / M;
    row.authKind = sender === 'ceiling' ? null : AUTH_KINDS[provider];
    if (!row.complete) {
      failedRun = true;
      process.stderr.write(`bench/providers: ${provider} ${sender}: ${row.delivered} of ${row.messages ?? M} delivered. ${(row.problems ?? []).join(' | ')} ${row.diagnosis ?? ''}\n`);
    }
    process.stdout.write(`  ${row.delivered} in ${Number(row.seconds).toFixed(2)} s: ${Math.round(row.deliveriesPerS)}/s`
      + `${row.connections == null ? '' : `, ${row.connections} connections, ${row.requests ?? 0} requests, ${row.auth} ${row.authKind}`}`
      + `, ${Number(row.cpuUs).toFixed(1)} µs CPU/message${row.mockCpuUsPerRequest == null ? '' : `, mock ${row.mockCpuUsPerRequest.toFixed(1)} µs/request`}\n`);
    rows.push(row);
  }
  const h = rows.find((r) => r.provider === provider && r.sender === 'herald');
  const ref = rows.find((r) => r.provider === provider && r.sender === 'reference');
  const ceil = rows.find((r) => r.provider === provider && r.sender === 'ceiling');
  if (h) h.ratioToReference = ref?.deliveriesPerS > 0 ? h.deliveriesPerS / ref.deliveriesPerS : null;
  for (const r of [h, ref]) if (r) r.ratioToCeiling = ceil?.deliveriesPerS > 0 ? r.deliveriesPerS / ceil.deliveriesPerS : null;
}

// --------------------------------------------------------------------------------- report
const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
const r2 = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
const r3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
const fmt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const cellOr = (x, f = (v) => v) => (x == null || (typeof x === 'number' && !Number.isFinite(x)) ? '–' : f(x));
const lines = [
  '',
  '| Provider | Sender | Messages | Seconds | Deliveries/s | ÷ reference | ÷ ceiling | Connections/1k | Auth/1k | Requests/1k | CPU µs/message | Mock CPU µs/request | Duplicates |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const r of rows) {
  lines.push(`| ${TITLES[r.provider]} | ${r.library}${r.complete ? '' : ' (incomplete)'} | ${r.delivered}/${r.messages} | ${Number(r.seconds).toFixed(2)} | `
    + `${fmt(r.deliveriesPerS)} | ${cellOr(r.ratioToReference, r2)} | ${cellOr(r.ratioToCeiling, r3)} | ${cellOr(r.connectionsPer1k, r2)} | `
    + `${cellOr(r.authPer1k, (v) => `${r2(v)} (${r.authKind})`)} | ${cellOr(r.requestsPer1k, r2)} | ${cellOr(r.cpuUs, r1)} | ${cellOr(r.mockCpuUsPerRequest, r1)} | ${cellOr(r.duplicates)} |`);
}
lines.push('');
for (const r of rows) {
  const what = `${TITLES[r.provider]} ${r.sender}`;
  if (r.cpuByThread) lines.push(`${what}: Herald CPU by thread (µs/message): ${Object.entries(r.cpuByThread).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (r.settings) lines.push(`${what}: ${r.library} settings ${JSON.stringify(r.settings)}; ${r.sent ?? 0} sent, ${r.failed ?? 0} failed`);
  if (r.h2load) lines.push(`${what}: ${r.h2load.command}`);
  if (r.crypto) lines.push(`${what}: ${r.crypto.command} (${r.crypto.body_bytes}-byte bodies)`);
  if (r.mock && r.mock.accepted !== undefined) {
    lines.push(`${what}: mock ${JSON.stringify(r.mock)}; mock busy ${r2(r.mockBusy)} of one core`);
  }
  if (r.problems?.length) lines.push(`${what}: problems: ${r.problems.join(' | ')}`);
}
const loadAfter = os.loadavg().map((x) => Math.round(x * 100) / 100);
lines.push(`${M} messages per sender, ${S} subscribers, mock threads ${opts.mockThreads}, ${cores} cores, rev ${REV}, ${when}; `
  + `load average (1, 5, 15 min) ${loadBefore.join(' ')} before, ${loadAfter.join(' ')} after`);
process.stdout.write(`${lines.join('\n')}\n`);

const summary = {
  when, rev: REV, cores, messages: M, subscribers: S, mock_threads: opts.mockThreads,
  herald_binary: BINARY, load_average_before: loadBefore, load_average_after: loadAfter,
  rows: rows.map((r) => ({
    provider: r.provider, sender: r.sender, library: r.library, transport: r.transport ?? null, concurrency: r.concurrency ?? null,
    messages: r.messages, delivered: r.delivered, complete: r.complete, seconds: r3(r.seconds),
    deliveries_per_s: r1(r.deliveriesPerS),
    ratio_to_reference: r.sender === 'herald' ? r3(r.ratioToReference) : null,
    ratio_to_ceiling: r.sender === 'ceiling' ? null : r3(r.ratioToCeiling),
    connections: r.connections ?? null, connections_per_1k: r2(r.connectionsPer1k), auth: r.auth ?? null,
    auth_per_1k: r2(r.authPer1k), auth_kind: r.authKind, requests_per_1k: r2(r.requestsPer1k),
    cpu_us_per_message: r1(r.cpuUs), mock_cpu_us_per_request: r2(r.mockCpuUsPerRequest),
    mock_cpu_us_per_message: r2(r.mockCpuUsPerMessage), mock_busy: r2(r.mockBusy),
    duplicates: r.duplicates ?? null, mock: r.mock ?? null,
    ...(r.sender === 'herald' ? {
      cpu_by_thread: r.cpuByThread ?? null, triggers_acked: r.triggersAcked ?? null, trigger_errors: r.triggerErrors ?? null,
      trigger_seconds: r.triggerSeconds ?? null,
    } : {}),
    ...(r.sender === 'reference' ? { sent: r.sent ?? null, failed: r.failed ?? null, settings: r.settings ?? null } : {}),
    ...(r.h2load ? { h2load: r.h2load } : {}),
    ...(r.crypto ? { crypto: r.crypto } : {}),
    ...(r.problems?.length ? { problems: r.problems } : {}),
  })),
};
// The same rows by provider, in the shape bench/run_all.mjs reads.
summary.providers = opts.providers.map((provider) => {
  const pick = (sender) => summary.rows.find((r) => r.provider === provider && r.sender === sender) ?? null;
  const ceiling = pick('ceiling');
  return {
    provider, label: TITLES[provider], herald: pick('herald'), reference: pick('reference'),
    ceiling: ceiling ? { ...ceiling, name: ceiling.library, per_s: ceiling.deliveries_per_s } : null,
  };
});
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (process.env.RESULT_JSON) writeFileSync(process.env.RESULT_JSON, `${JSON.stringify(summary)}\n`);

// One CSV row per row. A day's file written with other columns is left as it is: the rows go to
// the day's next file (DATE-providers-2.csv, ...), as run.sh does.
const COLUMNS = ['when', 'rev', 'cores', 'provider', 'sender', 'library', 'transport', 'messages', 'subscribers',
  'concurrency', 'mock_threads', 'delivered', 'duplicates', 'complete', 'seconds', 'deliveries_per_s',
  'ratio_to_reference', 'ratio_to_ceiling', 'connections', 'connections_per_1k', 'auth', 'auth_per_1k', 'auth_kind',
  'requests_per_1k', 'cpu_us_per_message', 'mock_cpu_us_per_request', 'mock_cpu_us_per_message', 'mock_busy'];
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
  const row = { ...r, when, rev: REV, cores, subscribers: S, mock_threads: r.provider === 'expo' ? '' : opts.mockThreads };
  appendFileSync(csv, `${COLUMNS.map((c) => cell(row[c])).join(',')}\n`);
}
process.stdout.write(`appended ${summary.rows.length} rows to ${path.relative(process.cwd(), csv) || csv}\n`);

for (const m of [...mocks]) await closeMock(m);
keepAlive.destroy();
pki?.cleanup();
if (failedRun) {
  process.stderr.write('bench/providers: incomplete run (missing deliveries or errors); see above\n');
  process.exit(1);
}
process.exit(0);
