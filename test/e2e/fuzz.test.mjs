// Bad input never crashes Herald or gets a 5xx: seeded, bounded mutations of valid bodies on
// the write routes (wrong types, missing and extra members, odd strings and numbers, deep
// nesting, prototype keys, template syntax, repeated Idempotency-Keys), then a valid trigger
// must still be delivered (whatever was queued, the pipeline survived it).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { novu, raw, startHerald } from './harness.mjs';
import { startReceiver } from './receiver.mjs';
import { createHookIntegration, createPushWorkflow, createSubscriber } from './push_fixtures.mjs';

const REQUESTS_PER_SEED = 1500;
let h;
let rx;
let sdk;
let integ;
let wf;
let sub;

before(async () => {
  rx = await startReceiver({ secret: 's' });
  h = await startHerald();
  sdk = novu(h);
  integ = await createHookIntegration(sdk, rx.url, 's');
  wf = await createPushWorkflow(sdk);
  sub = await createSubscriber(sdk, { tokens: ['t1'], integration: integ });
  const topic = await raw(h, 'POST', '/v2/topics', { body: { key: 'top', name: 'Top' } });
  assert.ok(topic.status < 300, topic.text);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  if (rx) await rx.close();
});

/** A small deterministic generator (the same requests on every run). */
function generator(seed) {
  let state = seed;
  const rnd = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  return { rnd, pick: (a) => a[Math.floor(rnd() * a.length)] };
}

function fuzz(seed) {
  const { rnd, pick } = generator(seed);
  const weird = [null, true, false, 0, -1, 1e308, -0, 1.5, '', 'x', 'a'.repeat(300), '\u0000', '\ud800', [], {}, [[]], [{}],
    { type: 'Topic' }, { type: 'Topic', topicKey: 'top', exclude: [null] }, { subscriberId: 5 }, { subscriberId: '' },
    { subscriberId: 'u', channels: [{ providerId: 'push-webhook', credentials: { deviceTokens: [1] } }] },
    { subscriberId: 'u', channels: 'x' }, { subscriberId: 'u', data: { a: { b: { c: [] } } } }, '{{', '{{#each x}}',
    { $gt: 1 }, 'sub-\n', Array(200).fill('x')];
  function mutate(obj, depth = 0) {
    if (depth > 3 || obj === null || typeof obj !== 'object') return rnd() < 0.3 ? pick(weird) : obj;
    const o = Array.isArray(obj) ? [...obj] : { ...obj };
    const keys = Object.keys(o);
    const r = rnd();
    if (r < 0.3 && keys.length) { const k = pick(keys); o[k] = pick(weird); }
    else if (r < 0.5 && keys.length) { delete o[pick(keys)]; }
    else if (r < 0.6) { o[pick(['extra', '__proto__', 'constructor', 'to', 'payload', 'overrides', 'actor', 'tenant', 'transactionId'])] = pick(weird); }
    else if (keys.length) { const k = pick(keys); o[k] = mutate(o[k], depth + 1); }
    return o;
  }
  const bases = [
    ['POST', '/v1/events/trigger', { name: wf.workflowId, to: sub, payload: { orderId: 1, nested: { a: [1, 2] } }, overrides: { 'push-webhook': { title: 'x' }, steps: {} }, transactionId: 'tx' }],
    ['POST', '/v1/events/trigger', { name: wf.workflowId, to: [{ subscriberId: 'jit', firstName: 'J', channels: [{ providerId: 'push-webhook', credentials: { deviceTokens: ['a'] } }] }, { type: 'Topic', topicKey: 'top', exclude: ['x'] }], payload: {} }],
    ['POST', '/v1/events/trigger/bulk', { events: [{ name: wf.workflowId, to: sub, payload: {} }, { name: 'nope', to: 'x' }] }],
    ['POST', '/v1/events/trigger/broadcast', { name: wf.workflowId, payload: { a: 1 } }],
    ['POST', '/v2/subscribers', { subscriberId: 'fz', firstName: 'F', email: 'a@b.c', data: { k: 1 } }],
    ['PATCH', '/v2/subscribers/fz', { firstName: 'G', data: { k: 2 } }],
    ['PUT', `/v1/subscribers/${sub}/credentials`, { providerId: 'push-webhook', credentials: { deviceTokens: ['t1', 't2'] }, integrationIdentifier: integ.identifier }],
    ['PATCH', `/v1/subscribers/${sub}/credentials`, { providerId: 'push-webhook', credentials: { deviceTokens: ['t3'] } }],
    ['POST', '/v1/integrations', { providerId: 'push-webhook', channel: 'push', credentials: { webhookUrl: 'https://example.com/h', secretKey: 'k' }, active: false, name: 'n' }],
    ['POST', '/v2/topics', { key: 'fz-top', name: 'T' }],
    ['POST', '/v2/topics/top/subscriptions', { subscriberIds: [sub, 'nobody'] }],
    ['POST', '/v2/workflows', { name: 'W', workflowId: 'fz-wf', steps: [{ type: 'push', name: 'p', controlValues: { subject: 's', body: 'b' } }] }],
  ];
  return { bases, mutate, rnd, pick };
}

for (const seed of [3, 7, 11]) {
  test(`seed ${seed}: ${REQUESTS_PER_SEED} mutated requests, no 5xx, no dropped connection`, { timeout: 120_000 }, async () => {
    const { bases, mutate, rnd, pick } = fuzz(seed);
    const statuses = {};
    for (let i = 0; i < REQUESTS_PER_SEED; i++) {
      const [method, path, body] = pick(bases);
      let b = body;
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) b = mutate(b);
      const headers = rnd() < 0.05 ? { 'idempotency-key': `fuzz-${seed}-${i % 7}` } : {};
      const res = await raw(h, method, path, { body: b, headers });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      assert.ok(res.status < 500, `${res.status} for ${method} ${path} ${JSON.stringify(b).slice(0, 300)}: ${res.text.slice(0, 300)}`);
      if (res.status >= 400) assert.equal(typeof res.json?.message, 'string', `a JSON error body: ${res.text.slice(0, 200)}`);
    }
    assert.ok((statuses[400] ?? 0) > 0 && (statuses[201] ?? 0) > 0, JSON.stringify(statuses));
  });
}

test('after the fuzzing a valid trigger is still delivered', { timeout: 30_000 }, async () => {
  const t = `after-fuzz-${Date.now()}`;
  await sdk.subscribers.credentials.update({ providerId: 'push-webhook', credentials: { deviceTokens: [t] }, integrationIdentifier: integ.identifier }, sub);
  const res = await sdk.trigger({ workflowId: wf.workflowId, to: sub, payload: { orderId: 9 } });
  assert.equal(res.result.status, 'processed');
  await rx.waitForToken(t);
  assert.equal((await raw(h, 'GET', '/healthz')).status, 200);
});
