// The reference sender of bench/providers/run.mjs: one provider's official (or most used) Node
// library sends MESSAGES pushes to a loopback mock, at most CONCURRENCY in flight, in a process
// of its own (as Herald is), so that the mock's process is the same in both measurements.
//
//   node bench/providers/reference.mjs JOB.json
//
// JOB: {provider: 'web-push'|'apns'|'fcm'|'expo', origin, port, caFile, messages, concurrency,
//       subscribers: [{subscriberId, token}], ...provider credentials (see below)}
// Prints one JSON line {event: 'ready'} once the library is loaded and set up, waits for a line
// on stdin, sends, then prints {event: 'done', sent, failed, errors, startAt, endAt, cpuUs,
// library} and exits. startAt/endAt are wall-clock ms (Date.now(), as the mocks stamp receipts).
//
//   web-push: web-push's sendNotification() with an https.Agent (keepAlive, the test CA).
//   apns:     @parse/node-apn's apn.Provider({token, address: 127.0.0.1, port, ca}): its own
//             HTTP/2 session handling.
//   fcm:      firebase-admin's messaging.send() over HTTP/1.1 through app.options.httpAgent, an
//             https.Agent that dials the mock (protocols.md §1.10, way 2); the credential is an
//             object (way 1) whose getAccessToken() makes the JWT-bearer exchange with the mock's
//             token endpoint: google-auth-library's own exchange signs aud =
//             https://oauth2.googleapis.com/token, which the mock (like Google for another
//             token_uri) refuses.
//   expo:     expo-server-sdk as its README uses it: every message built, chunkPushNotifications
//             (100 a chunk), sendPushNotificationsAsync for each chunk at once, which the SDK
//             itself holds to 6 requests in flight (CONCURRENCY does not apply); EXPO_BASE_URL
//             points it at the mock (read when the SDK loads), an undici Agent trusts the test CA.
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import { e2eRequire } from '../../test/e2e/mock_support.mjs';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ca = readFileSync(job.caFile, 'utf8');
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

async function makeSender() {
  if (job.provider === 'web-push') {
    const webpush = e2eRequire('web-push');
    const agent = new https.Agent({ ca, keepAlive: true, maxSockets: job.concurrency });
    const vapidDetails = { subject: job.vapid.subject, publicKey: job.vapid.publicKey, privateKey: job.vapid.privateKey };
    return {
      library: versionOf('web-push'),
      send: async (i) => {
        const c = content(i);
        const payload = JSON.stringify({ title: c.title, body: c.body, data: c.data });
        await webpush.sendNotification(JSON.parse(c.sub.token), payload, {
          TTL: 2_419_200, vapidDetails, agent, timeout: 30_000,
        });
      },
      close: async () => agent.destroy(),
    };
  }
  if (job.provider === 'apns') {
    const apn = e2eRequire('@parse/node-apn');
    const provider = new apn.Provider({
      token: { key: job.apns.privateKeyPem, keyId: job.apns.keyId, teamId: job.apns.teamId },
      address: '127.0.0.1', port: job.port, ca, production: false, requestTimeout: 30_000,
    });
    return {
      library: versionOf('@parse/node-apn'),
      send: async (i) => {
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
      },
      close: async () => provider.shutdown(),
    };
  }
  if (job.provider === 'fcm') {
    const { initializeApp } = e2eRequire('firebase-admin/app');
    const { getMessaging } = e2eRequire('firebase-admin/messaging');
    const account = JSON.parse(job.fcm.serviceAccount);
    // Every request firebase-admin makes to https://fcm.googleapis.com goes to the mock instead;
    // the mock's certificate is for 127.0.0.1 and localhost.
    class MockAgent extends https.Agent {
      createConnection(options, callback) {
        return tls.connect({ ...options, host: '127.0.0.1', port: job.port, servername: 'localhost', ca }, callback);
      }
    }
    const httpAgent = new MockAgent({ keepAlive: true, maxSockets: job.concurrency });
    const tokenAgent = new https.Agent({ ca, keepAlive: false });
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
          const req = https.request(account.token_uri, {
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
    return {
      library: versionOf('firebase-admin'),
      send: async (i) => {
        const c = content(i);
        await messaging.send({
          token: c.sub.token,
          notification: { title: c.title, body: c.body },
          data: { n: String(c.data.n), messageId: c.data.messageId },
        });
      },
      close: async () => { httpAgent.destroy(); tokenAgent.destroy(); },
    };
  }
  if (job.provider === 'expo') {
    process.env.EXPO_BASE_URL = job.origin;
    // An ES module: imported by its path (require() cannot load it on Node 20).
    const { Expo } = await import(pathToFileURL(e2eRequire.resolve('expo-server-sdk')).href);
    const { Agent } = e2eRequire('undici');
    const httpAgent = new Agent({ connect: { ca } });
    const expo = new Expo({ accessToken: job.expo.accessToken, httpAgent });
    return {
      library: versionOf('expo-server-sdk'),
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
say({ event: 'ready', library: sender.library });
const lines = createInterface({ input: process.stdin });
await new Promise((resolve) => { lines.once('line', resolve); lines.once('close', resolve); });
lines.close();

let sent = 0;
let failed = 0;
const errors = [];
const cpu0 = process.cpuUsage();
const startAt = Date.now();
let next = 0;
if (sender.sendAll) {
  ({ sent, failed } = await sender.sendAll(errors));
} else {
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= job.messages) return;
      try {
        await sender.send(i);
        sent += 1;
      } catch (err) {
        failed += 1;
        if (errors.length < 5) errors.push(`${err?.statusCode ?? ''} ${err?.message ?? err} ${err?.body ?? ''}`.trim().slice(0, 300));
      }
    }
  }));
}
const endAt = Date.now();
const cpu = process.cpuUsage(cpu0);
say({ event: 'done', sent, failed, errors, startAt, endAt, cpuUs: cpu.user + cpu.system, library: sender.library });
await sender.close().catch(() => {});
process.exit(0);
