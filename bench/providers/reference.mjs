// The reference sender of bench/providers/run.mjs: one provider's official (or most used) Node
// library sends MESSAGES pushes to a loopback mock, in a process of its own (as Herald is), so
// that the mock's process is the same in both measurements.
//
//   node bench/providers/reference.mjs JOB.json
//
// JOB: {provider: 'web-push'|'apns'|'fcm'|'expo', host, port, origin, messages, concurrency,
//       subscribers: [{subscriberId, token}], ...provider settings (below)}
// Prints one JSON line {event: 'ready', library, settings} once the library is loaded and set
// up, waits for a line on stdin, sends, then prints {event: 'done', sent, failed, errors,
// startAt, endAt, cpuUs, library} and exits. startAt/endAt are wall-clock ms (Date.now()).
//
// web-push, apns and fcm talk cleartext to herald_bench_h2mock, without patching the libraries:
//   web-push: sendNotification() for subscriptions whose endpoint is http://HOST:PORT/wp/<k>,
//             with `agent`, an https.Agent subclass whose createConnection() opens a plain TCP
//             socket (web-push calls https.request with the endpoint's host, port and path, and
//             accepts only an https.Agent); keep-alive, at most CONCURRENCY sockets; CONCURRENCY
//             sends in flight. Each message carries `topic: n<i>` (the mock's key for duplicates)
//             and TTL 2419200 (Herald's default); web-push signs a VAPID JWT per message.
//   apns:     @parse/node-apn's Provider (or MultiProvider with JOB.apns.clients > 1 sessions) with
//             `createConnection` returning a TCP socket: the library hands its whole config to
//             http2.connect(), which then speaks h2c over it. One HTTP/2 session multiplexes the
//             CONCURRENCY sends in flight (the library has no concurrency setting of its own).
//   fcm:      firebase-admin's sendEach(), 500 messages a call (its limit). JOB.fcm.transport
//             'http1': enableLegacyHttpTransport(), app.options.httpAgent = the plain-socket
//             https.Agent subclass (at most CONCURRENCY sockets), two calls at a time so that
//             the agent always has requests queued (protocols.md §1.10, way 2). 'h2': its default
//             HTTP/2 transport, whose session goes to a fixed https://fcm.googleapis.com with no
//             hook: http2.connect (the Node module's function, not the library) is wrapped in this
//             process to open http://HOST:PORT instead; each call has its own session (at most 100
//             streams, the library's setting), ceil(CONCURRENCY / 100) calls at a time. Either
//             way the credential is an object (way 1) whose getAccessToken() makes the JWT-bearer
//             exchange with the mock's token endpoint (the service account's token_uri):
//             google-auth-library's own exchange goes to Google's fixed token URL.
//   expo:     (the Node mock over TLS, JOB.caFile) expo-server-sdk as its README uses it: every
//             message built, chunkPushNotifications (100 a chunk), sendPushNotificationsAsync for
//             each chunk at once, which the SDK itself holds to 6 requests in flight (CONCURRENCY
//             does not apply); EXPO_BASE_URL points it at the mock, an undici Agent trusts the CA.
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { e2eRequire } from '../../test/e2e/mock_support.mjs';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const SUBS = job.subscribers;
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
// Not through require(): firebase-admin's exports map hides its package.json.
const versionOf = (pkg) => `${pkg} ${JSON.parse(readFileSync(new URL(`../../test/e2e/node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version}`;

// What message i carries, as Herald renders the bench workflow: title "Hi <subscriberId>", body
// "n=<i>", the trigger payload and a message id.
const messageId = (i) => (0x65f0_0000_0000 + i).toString(16).padStart(24, '0');
const content = (i) => {
  const sub = SUBS[i % SUBS.length];
  return { sub, title: `Hi ${sub.subscriberId}`, body: `n=${i}`, data: { n: i, messageId: messageId(i) } };
};

/** An https.Agent (what web-push and firebase-admin accept) whose sockets are plain TCP to the mock. */
class CleartextAgent extends https.Agent {
  createConnection() {
    return net.connect({ host: job.host, port: job.port });
  }
}

/** Runs send(i) for every message, `concurrency` at a time; resolves {sent, failed}. */
async function pooled(concurrency, send, errors) {
  let next = 0;
  let sent = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= job.messages) return;
      try {
        await send(i);
        sent += 1;
      } catch (err) {
        failed += 1;
        if (errors.length < 5) errors.push(`${err?.statusCode ?? ''} ${err?.message ?? err} ${err?.body ?? ''}`.trim().slice(0, 300));
      }
    }
  }));
  return { sent, failed };
}

async function makeSender() {
  if (job.provider === 'web-push') {
    const webpush = e2eRequire('web-push');
    const agent = new CleartextAgent({ keepAlive: true, maxSockets: job.concurrency });
    const vapidDetails = { subject: job.vapid.subject, publicKey: job.vapid.publicKey, privateKey: job.vapid.privateKey };
    const subscriptions = SUBS.map((s) => JSON.parse(s.token));
    return {
      library: versionOf('web-push'),
      settings: { concurrency: job.concurrency, transport: 'HTTP/1.1 keep-alive' },
      sendAll: (errors) => pooled(job.concurrency, async (i) => {
        const c = content(i);
        const payload = JSON.stringify({ title: c.title, body: c.body, data: c.data });
        await webpush.sendNotification(subscriptions[i % subscriptions.length], payload, {
          TTL: 2_419_200, topic: `n${i}`, vapidDetails, agent, timeout: 30_000,
        });
      }, errors),
      close: async () => agent.destroy(),
    };
  }
  if (job.provider === 'apns') {
    const apn = e2eRequire('@parse/node-apn');
    const clients = job.apns.clients ?? 1;
    const options = {
      token: { key: job.apns.privateKeyPem, keyId: job.apns.keyId, teamId: job.apns.teamId },
      address: job.host, port: job.port, production: false, requestTimeout: 30_000,
      // http2.connect(url, config) takes this socket and speaks h2c over it.
      createConnection: () => net.connect({ host: job.host, port: job.port }),
      ...(clients > 1 ? { clientCount: clients } : {}),
    };
    const provider = clients > 1 ? new apn.MultiProvider(options) : new apn.Provider(options);
    return {
      library: versionOf('@parse/node-apn'),
      settings: { concurrency: job.concurrency, sessions: clients, transport: 'h2c' },
      sendAll: (errors) => pooled(job.concurrency, async (i) => {
        const c = content(i);
        const note = new apn.Notification();
        note.alert = { title: c.title, body: c.body };
        note.topic = job.apns.topic;
        note.pushType = 'alert';
        note.payload = c.data;
        const result = await provider.send(note, c.sub.token);
        if (result.failed.length) {
          const f = result.failed[0];
          throw new Error(`${f.status ?? ''} ${JSON.stringify(f.response ?? f.error?.message ?? f.error)}`);
        }
      }, errors),
      close: async () => provider.shutdown(),
    };
  }
  if (job.provider === 'fcm') {
    const transport = job.fcm.transport ?? 'http1';
    if (transport === 'h2') {
      // firebase-admin opens https://fcm.googleapis.com itself; send that session to the mock.
      const connect = http2.connect;
      http2.connect = (authority, options, listener) => connect(
        String(authority).startsWith('https://fcm.googleapis.com') ? `http://${job.host}:${job.port}` : authority,
        options, listener,
      );
    }
    const { initializeApp } = e2eRequire('firebase-admin/app');
    const { getMessaging } = e2eRequire('firebase-admin/messaging');
    const account = JSON.parse(job.fcm.serviceAccount);
    const httpAgent = new CleartextAgent({ keepAlive: true, maxSockets: job.concurrency });
    const tokenAgent = new http.Agent({ keepAlive: false });
    const key = createPrivateKey(account.private_key);
    const credential = {
      // The service account's JWT-bearer grant (RFC 7523), as google-auth-library makes it.
      async getAccessToken() {
        const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const iat = Math.floor(Date.now() / 1000);
        const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: account.private_key_id })}.${b64({
          iss: account.client_email, scope: 'https://www.googleapis.com/auth/firebase.messaging',
          aud: account.token_uri, iat, exp: iat + 3600,
        })}`;
        const assertion = `${input}.${sign('RSA-SHA256', Buffer.from(input), key).toString('base64url')}`;
        const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
        const reply = await new Promise((resolve, reject) => {
          const req = http.request(account.token_uri, {
            method: 'POST', agent: tokenAgent, timeout: 10_000,
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) },
          }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`token endpoint ${res.statusCode}: ${text}`))));
          });
          req.on('timeout', () => req.destroy(new Error('token endpoint timed out')));
          req.on('error', reject);
          req.end(form);
        });
        return { access_token: reply.access_token, expires_in: reply.expires_in };
      },
    };
    const app = initializeApp({ credential, projectId: account.project_id, httpAgent }, `bench-${process.pid}`);
    const messaging = getMessaging(app);
    if (transport === 'http1') messaging.enableLegacyHttpTransport();
    const BATCH = 500;
    const parallel = transport === 'h2' ? Math.max(1, Math.ceil(job.concurrency / 100)) : 2;
    return {
      library: versionOf('firebase-admin'),
      settings: {
        transport: transport === 'h2' ? 'h2c (its HTTP/2 sendEach)' : 'HTTP/1.1 keep-alive (legacy transport)',
        batch: BATCH, calls_in_flight: parallel, ...(transport === 'h2' ? { streams_per_session: 100 } : { sockets: job.concurrency }),
      },
      sendAll: async (errors) => {
        let sent = 0;
        let failed = 0;
        let nextBatch = 0;
        const batches = Math.ceil(job.messages / BATCH);
        await Promise.all(Array.from({ length: parallel }, async () => {
          for (;;) {
            const b = nextBatch++;
            if (b >= batches) return;
            const messages = [];
            for (let i = b * BATCH; i < Math.min(job.messages, (b + 1) * BATCH); i++) {
              const c = content(i);
              messages.push({
                token: c.sub.token,
                notification: { title: c.title, body: c.body },
                data: { n: String(c.data.n), messageId: c.data.messageId },
              });
            }
            try {
              const res = await messaging.sendEach(messages);
              sent += res.successCount;
              failed += res.failureCount;
              for (const r of res.responses) {
                if (!r.success && errors.length < 5) errors.push(`${r.error?.code ?? ''} ${r.error?.message ?? ''}`.trim().slice(0, 300));
              }
            } catch (err) {
              failed += messages.length;
              if (errors.length < 5) errors.push(`${err?.code ?? ''} ${err?.message ?? err}`.trim().slice(0, 300));
            }
          }
        }));
        return { sent, failed };
      },
      close: async () => { httpAgent.destroy(); tokenAgent.destroy(); },
    };
  }
  if (job.provider === 'expo') {
    process.env.EXPO_BASE_URL = job.origin;
    // An ES module: imported by its path (require() cannot load it on Node 20).
    const { Expo } = await import(pathToFileURL(e2eRequire.resolve('expo-server-sdk')).href);
    const { Agent } = e2eRequire('undici');
    const httpAgent = new Agent({ connect: { ca: readFileSync(job.caFile, 'utf8') } });
    const expo = new Expo({ accessToken: job.expo.accessToken, httpAgent });
    return {
      library: versionOf('expo-server-sdk'),
      settings: { concurrency: 6, transport: 'its own (undici)' },
      // Resolves {sent, failed}: tickets ok and not (a chunk that throws fails all its messages).
      sendAll: async (errors) => {
        const messages = Array.from({ length: job.messages }, (_, i) => {
          const c = content(i);
          return { to: c.sub.token, title: c.title, body: c.body, data: c.data };
        });
        const chunks = expo.chunkPushNotifications(messages);
        let sent = 0;
        let failed = 0;
        await Promise.all(chunks.map(async (chunk) => {
          try {
            for (const ticket of await expo.sendPushNotificationsAsync(chunk)) {
              if (ticket.status === 'ok') {
                sent += 1;
              } else {
                failed += 1;
                if (errors.length < 5) errors.push(`ticket ${ticket.details?.error ?? ''} ${ticket.message ?? ''}`.trim());
              }
            }
          } catch (err) {
            failed += chunk.length;
            if (errors.length < 5) errors.push(`${err?.statusCode ?? ''} ${err?.code ?? ''} ${err?.message ?? err}`.trim().slice(0, 300));
          }
        }));
        return { sent, failed };
      },
      close: async () => httpAgent.close(),
    };
  }
  throw new Error(`unknown provider ${job.provider}`);
}

const sender = await makeSender();
say({ event: 'ready', library: sender.library, settings: sender.settings });
const lines = createInterface({ input: process.stdin });
await new Promise((resolve) => { lines.once('line', resolve); lines.once('close', resolve); });
lines.close();

const errors = [];
const cpu0 = process.cpuUsage();
const startAt = Date.now();
const { sent, failed } = await sender.sendAll(errors);
const endAt = Date.now();
const cpu = process.cpuUsage(cpu0);
say({ event: 'done', sent, failed, errors, startAt, endAt, cpuUs: cpu.user + cpu.system, library: sender.library });
await sender.close().catch(() => {});
process.exit(0);
