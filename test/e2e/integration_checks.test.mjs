// Integration checks through the public API on the push-webhook provider (the provider suites
// cover Web Push, APNs and FCM): Test Connection asks the URL without delivering anything, Send
// Test delivers one signed push now; bad input and unknown integrations are 4xx; and an
// integration that keeps dead tokens (configurations.removeDeadTokens = false).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from './harness.mjs';
import {
  createIntegration, raw, sendTest, startHeraldForMocks, testConnection, uid,
} from './provider_fixtures.mjs';
import { startReceiver } from './receiver.mjs';

const T = { timeout: 30_000 };
const SECRET = 'checks-secret';
let h;
let rx;
let hook;
const scripts = new Map(); // token -> receiver action

before(async () => {
  ({ h } = await startHeraldForMocks());
  rx = await startReceiver({ secret: SECRET, behave: (req, n) => scripts.get(req.token)?.(req, n) });
  hook = await createIntegration(h, 'push-webhook', { webhookUrl: rx.url, secretKey: SECRET });
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  if (rx) await rx.close();
});

test('Test Connection on a push webhook: the URL answers (no push is delivered)', T, async () => {
  const before = rx.requests.length;
  const result = await testConnection(h, hook);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.match(result.detail, /answered HTTP \d{3}/);
  assert.ok(rx.requests.slice(before).every((r) => r.method === 'HEAD'), 'only a HEAD request');

  const port = await freePort();  // nobody listens there
  const dead = await createIntegration(h, 'push-webhook', { webhookUrl: `http://127.0.0.1:${port}/x`, secretKey: SECRET });
  const refused = await testConnection(h, dead);
  assert.equal(refused.ok, false);
  assert.equal(refused.reason, 'CONNECT');
});

test('Send Test delivers one signed push now and answers with the verdict', T, async () => {
  const token = uid('tok');
  const result = await sendTest(h, hook, token, { title: 'Ping', body: 'Pong' });
  assert.deepEqual({ ok: result.ok, verdict: result.verdict }, { ok: true, verdict: 'delivered' }, JSON.stringify(result));
  const [got] = rx.forToken(token);
  assert.ok(got.sigOk, 'signed like every push-webhook delivery');
  assert.equal(got.json.title, 'Ping');
  assert.equal(got.json.content, 'Pong');
  assert.equal(result.providerResponseId, got.json && `rcv-${got.seq}`);

  const failing = uid('tok');
  scripts.set(failing, () => ({ status: 500 }));
  const failed = await sendTest(h, hook, failing);
  assert.equal(failed.ok, false);
  assert.equal(failed.verdict, 'retry');
  assert.equal(failed.reason, 'HTTP_500');
});

test('integration checks refuse bad input and unknown integrations', T, async () => {
  const missing = '000000000000000000000000';
  for (const path of [`/v1/integrations/${missing}/test`, `/v1/integrations/${missing}/send-test`]) {
    const res = await raw(h, 'POST', path, { body: { token: 'x' } });
    assert.equal(res.status, 404, `${path}: ${res.text}`);
  }
  for (const body of [{}, { token: 5 }, { token: '' }, { token: 'x', extra: 1 }, { token: 'x', title: 3 }]) {
    const res = await raw(h, 'POST', `/v1/integrations/${hook._id}/send-test`, { body });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.equal(res.json.statusCode, 400);
  }
  const notJson = await raw(h, 'POST', `/v1/integrations/${hook._id}/send-test`, {
    body: 'not json', headers: { 'content-type': 'application/json' },
  });
  assert.equal(notJson.status, 400);
  const badConfig = await raw(h, 'PUT', `/v1/integrations/${hook._id}`, { body: { configurations: { removeDeadTokens: 'no' } } });
  assert.equal(badConfig.status, 400, badConfig.text);
  assert.match(badConfig.json.message, /configurations\.removeDeadTokens/);
});
