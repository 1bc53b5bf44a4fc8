// The bulk subscriber routes: Novu's POST /v1/subscribers/bulk through @novu/api (created,
// updated and failed as Novu answers, the 500 cap) and Herald's NDJSON import,
// POST /v1/subscribers/import: thousands of subscribers with tokens and a topic in one request,
// then one trigger to the topic reaches every token; a bad line is a 400 naming it with nothing
// imported; a body over the route's 64 MiB is a 413; the route's larger limit is its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertErrorBody, expectSdkError, novu, raw, rawHttp, startHerald, uid,
} from './harness.mjs';
import { startReceiver, waitFor } from './receiver.mjs';
import { PW, createHookIntegration, createPushWorkflow } from './push_fixtures.mjs';

const T = { timeout: 60_000 };
const SECRET = 'import-s3cret';
const MiB = 1024 * 1024;
const NDJSON = { 'content-type': 'application/x-ndjson' };

let h;
let sdk;
let rx;
let integ;
let wf;

before(async () => {
  rx = await startReceiver({ secret: SECRET, maxRequests: 30_000 });
  h = await startHerald();
  sdk = novu(h);
  integ = await createHookIntegration(sdk, rx.url, SECRET);
  wf = await createPushWorkflow(sdk);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  if (rx) await rx.close();
});

const ndjson = (lines) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
const importBody = (body, opts = {}) => raw(h, 'POST', '/v1/subscribers/import', { body, headers: NDJSON, ...opts });

async function assertNoSubscriber(subscriberId) {
  await expectSdkError(sdk.subscribers.retrieve(subscriberId), { cls: 'ErrorDto', status: 404 });
}

test('bulk create answers created, updated and failed as Novu does', T, async () => {
  const existing = uid('bulk-old');
  await sdk.subscribers.create({ subscriberId: existing, firstName: 'Old', lastName: 'Kept' });
  const [a, b] = [uid('bulk-a'), uid('bulk-b')];
  const res = await sdk.subscribers.createBulk({
    subscribers: [
      { subscriberId: a, firstName: 'Ann', email: 'ann@example.com', data: { plan: 'pro' } },
      { subscriberId: b, firstName: 'Bo' },
      { subscriberId: existing, firstName: 'Renamed' },
      { subscriberId: b, firstName: 'Bob' },
    ],
  });
  assert.deepEqual(res.result.created.map((x) => x.subscriberId), [a, b]);
  assert.deepEqual(res.result.updated.map((x) => x.subscriberId), [existing, b]);
  assert.deepEqual(res.result.failed, []);

  const ann = (await sdk.subscribers.retrieve(a)).result;
  assert.equal(ann.email, 'ann@example.com');
  assert.deepEqual(ann.data, { plan: 'pro' });
  assert.equal((await sdk.subscribers.retrieve(b)).result.firstName, 'Bob');
  const old = (await sdk.subscribers.retrieve(existing)).result;
  assert.equal(old.firstName, 'Renamed');
  assert.equal(old.lastName, 'Kept'); // fields left out are kept

  // The raw reply: 201 and Novu's envelope.
  const c = uid('bulk-c');
  const rawRes = await raw(h, 'POST', '/v1/subscribers/bulk', { body: { subscribers: [{ subscriberId: c }] } });
  assert.equal(rawRes.status, 201, rawRes.text);
  assert.deepEqual(rawRes.json, { data: { created: [{ subscriberId: c }], updated: [], failed: [] } });
});

test('bulk create takes 1 to 500 subscribers, each checked as a single create; nothing half-applied', T, async () => {
  const many = Array.from({ length: 501 }, (_, i) => ({ subscriberId: `bulk-cap-${i}` }));
  const over = await raw(h, 'POST', '/v1/subscribers/bulk', { body: { subscribers: many } });
  assertErrorBody(over, 400, { includes: 'subscribers must contain no more than 500 elements' });
  await expectSdkError(sdk.subscribers.createBulk({ subscribers: many }), { status: 400 });
  await assertNoSubscriber('bulk-cap-0');
  assertErrorBody(await raw(h, 'POST', '/v1/subscribers/bulk', { body: { subscribers: [] } }), 400,
    { includes: 'subscribers should not be empty' });
  assertErrorBody(await raw(h, 'POST', '/v1/subscribers/bulk', { body: {} }), 400);

  const first = uid('bulk-first');
  const bad = await raw(h, 'POST', '/v1/subscribers/bulk', {
    body: { subscribers: [{ subscriberId: first }, { subscriberId: uid('x') }, { subscriberId: uid('y'), email: 5 }] },
  });
  assertErrorBody(bad, 400, { includes: 'subscribers[2].email must be a string' });
  await assertNoSubscriber(first);

  const full = await raw(h, 'POST', '/v1/subscribers/bulk', { body: { subscribers: many.slice(0, 500) } });
  assert.equal(full.status, 201, full.text);
  assert.equal(full.json.data.created.length, 500);
});

test('import: 8 000 subscribers with a token and a topic in one 1.5 MiB request, then a trigger to the topic reaches every token', T, async () => {
  const topicKey = uid('imported');
  const run = uid('imp');
  const n = 8_000;
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push({
      subscriberId: `${run}-${i}`, firstName: `F${i}`,
      channels: [{ providerId: PW, integrationIdentifier: integ.identifier, credentials: { deviceTokens: [`${run}-tok-${i}`] } }],
      topics: [topicKey],
    });
  }
  const body = ndjson(lines);
  assert.ok(body.length > MiB, 'over the other routes\' 1 MiB limit');
  const res = await importBody(body);
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(res.json, {
    data: { created: n, updated: 0, tokensAdded: n, topicSubscriptionsAdded: n, topicsCreated: 1 },
  });

  // What the SDK sees of one of them.
  const one = (await sdk.subscribers.retrieve(`${run}-7`)).result;
  assert.equal(one.firstName, 'F7');
  assert.deepEqual(one.channels.map((c) => [c.providerId, c.credentials.deviceTokens]), [[PW, [`${run}-tok-7`]]]);
  assert.equal((await sdk.topics.get(topicKey)).result.key, topicKey);
  const members = await sdk.topics.subscriptions.list({ topicKey, limit: 1 });
  assert.equal(members.result.totalCount, n);

  const trigger = await sdk.trigger({ workflowId: wf.workflowId, to: [{ type: 'Topic', topicKey }], payload: { orderId: 1 } });
  assert.equal(trigger.result.status, 'processed');
  const seen = () => {
    const counts = rx.counts();
    let got = 0;
    for (let i = 0; i < n; i++) if (counts.get(`${run}-tok-${i}`)) got++;
    return got;
  };
  await waitFor(() => seen() === n, 45_000, { interval: 250, describe: () => `${seen()} of ${n} tokens reached` });
  const counts = rx.counts();
  for (let i = 0; i < n; i++) assert.equal(counts.get(`${run}-tok-${i}`), 1, `token ${i} once`);
  const sample = rx.forToken(`${run}-tok-42`)[0];
  assert.ok(sample.sigOk, 'signed with the integration\'s secret');
  assert.equal(sample.json.title, 'Hi F42');

  // Importing the same lines again changes nothing but the subscribers' update time.
  const again = await importBody(body);
  assert.equal(again.status, 201, again.text);
  assert.deepEqual(again.json.data, { created: 0, updated: n, tokensAdded: 0, topicSubscriptionsAdded: 0, topicsCreated: 0 });
});

test('import: upserts an existing subscriber, appending its tokens as PATCH credentials does', T, async () => {
  const id = uid('imp-upsert');
  await sdk.subscribers.create({ subscriberId: id, firstName: 'Ann', lastName: 'Lee', phone: '+100' });
  await sdk.subscribers.credentials.update({ providerId: PW, integrationIdentifier: integ.identifier, credentials: { deviceTokens: ['t-a'] } }, id);
  const res = await importBody(ndjson([
    { subscriberId: id, firstName: 'Anna', phone: null, channels: [{ providerId: PW, integrationIdentifier: integ.identifier, credentials: { deviceTokens: ['t-b', 't-a'] } }] },
  ]));
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(res.json.data, { created: 0, updated: 1, tokensAdded: 1, topicSubscriptionsAdded: 0, topicsCreated: 0 });
  const sub = (await sdk.subscribers.retrieve(id)).result;
  assert.equal(sub.firstName, 'Anna');
  assert.equal(sub.lastName, 'Lee');
  assert.ok(sub.phone === null || sub.phone === undefined, `phone cleared: ${sub.phone}`);
  assert.deepEqual(sub.channels[0].credentials.deviceTokens, ['t-a', 't-b']);
});

test('import: a bad line is a 400 naming its line and field, and nothing is imported', T, async () => {
  const ids = [uid('imp-bad'), uid('imp-bad'), uid('imp-bad')];
  const good = (id) => ({ subscriberId: id, channels: [{ providerId: PW, credentials: { deviceTokens: [`${id}-t`] } }], topics: [`${id}-topic`] });
  const cases = [
    [[good(ids[0]), '', good(ids[1]), { subscriberId: ids[2], email: 7 }], 'line 4: email must be a string'],
    [[good(ids[0]), { subscriberId: ids[1], topic: ['x'] }], 'line 2: property topic should not exist'],
    [[good(ids[0]), '{"subscriberId": "x",'], 'line 2: Malformed JSON'],
    [[good(ids[0]), { subscriberId: ids[1], channels: [{ providerId: 'expo', credentials: { deviceTokens: ['not-expo'] } }] }],
      'line 2: channels[0].credentials.deviceTokens[0]: device token must be an Expo push token'],
    [[good(ids[0]), { subscriberId: ids[1], channels: [{ providerId: 'sms' }] }], 'line 2: channels[0].providerId sms is not a supported push provider'],
    [[{ firstName: 'no id' }], 'line 1: subscriberId is required'],
    [[good(ids[0]), { subscriberId: ids[1], topics: [''] }], 'line 2: topics[0] must not be empty'],
    // Found only when written: no integration by that identifier. The transaction is undone.
    [[good(ids[0]), good(ids[1]), { subscriberId: ids[2], channels: [{ providerId: PW, integrationIdentifier: 'no-such-hook', credentials: { deviceTokens: ['t'] } }] }],
      'line 3: channels[0]: Integration with identifier no-such-hook'],
  ];
  for (const [lines, message] of cases) {
    const res = await importBody(ndjson(lines));
    assertErrorBody(res, 400, { includes: message, path: '/v1/subscribers/import' });
  }
  for (const id of ids) await assertNoSubscriber(id);
  await expectSdkError(sdk.topics.get(`${ids[0]}-topic`), { status: 404 });

  // The same token check as PUT /v1/subscribers/{id}/credentials.
  const holder = uid('imp-holder');
  await sdk.subscribers.create({ subscriberId: holder });
  const put = await raw(h, 'PUT', `/v1/subscribers/${holder}/credentials`, { body: { providerId: 'expo', credentials: { deviceTokens: ['not-expo'] } } });
  assertErrorBody(put, 400);
  const imported = await importBody(ndjson([{ subscriberId: holder, channels: [{ providerId: 'expo', credentials: { deviceTokens: ['not-expo'] } }] }]));
  assert.equal(imported.json.message, `line 1: channels[0].${put.json.message}`);

  for (const body of ['', '\n \n']) {
    assertErrorBody(await importBody(body), 400, { includes: 'no subscriber' });
  }
});

test('import: NDJSON only, authenticated only', T, async () => {
  const line = ndjson([{ subscriberId: uid('imp-auth') }]);
  const json = await raw(h, 'POST', '/v1/subscribers/import', { body: line });
  assertErrorBody(json, 415, { includes: 'application/x-ndjson' });
  const withCharset = await importBody(line, { headers: { 'content-type': 'application/x-ndjson; charset=utf-8' } });
  assert.equal(withCharset.status, 201, withCharset.text);

  for (const path of ['/v1/subscribers/import', '/v1/subscribers/bulk']) {
    const body = path.endsWith('import') ? line : { subscribers: [{ subscriberId: uid('x') }] };
    assertErrorBody(await raw(h, 'POST', path, { body, headers: path.endsWith('import') ? NDJSON : {}, key: null }), 401,
      { includes: 'Missing authorization header' });
    assertErrorBody(await raw(h, 'POST', path, { body, headers: path.endsWith('import') ? NDJSON : {}, key: 'wrong-key' }), 401,
      { includes: 'API Key not found' });
  }
  // Environments stay apart: what the production key imports is not in development.
  const prodOnly = uid('imp-prod');
  const prod = await importBody(ndjson([{ subscriberId: prodOnly }]), { key: h.prodKey });
  assert.equal(prod.status, 201, prod.text);
  await assertNoSubscriber(prodOnly);
  assert.equal((await novu(h, h.prodKey).subscribers.retrieve(prodOnly)).result.subscriberId, prodOnly);
});

// Seeded, bounded mutations of valid bodies (wrong types, missing and extra members, cut lines,
// stray bytes): every answer is a 201 or a 4xx JSON error, never a 5xx; the server still imports.
test('mutated bulk and import bodies never get a 5xx', T, async () => {
  let state = 17;
  const rnd = () => { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648; };
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const weird = [null, true, 0, -1, 1e308, 1.5, '', 'x', 'a'.repeat(300), '\u0000', '\ud800', [], {}, [[]], [{}],
    [1], ['', 'x'], { providerId: 'push-webhook' }, { providerId: 'expo', credentials: { deviceTokens: ['bad'] } },
    [{ providerId: PW, credentials: { deviceTokens: Array(101).fill('t').map((t, i) => t + i) } }], '{{', { $gt: 1 }];
  const mutate = (obj, depth = 0) => {
    if (depth > 3 || obj === null || typeof obj !== 'object') return rnd() < 0.3 ? pick(weird) : obj;
    const o = Array.isArray(obj) ? [...obj] : { ...obj };
    const keys = Object.keys(o);
    const r = rnd();
    if (r < 0.3 && keys.length) o[pick(keys)] = pick(weird);
    else if (r < 0.5 && keys.length) delete o[pick(keys)];
    else if (r < 0.6) o[pick(['extra', '__proto__', 'constructor', 'channels', 'topics', 'data', 'subscriberId'])] = pick(weird);
    else if (keys.length) { const k = pick(keys); o[k] = mutate(o[k], depth + 1); }
    return o;
  };
  const base = (i) => ({
    subscriberId: `fz-${i % 7}`, firstName: 'F', email: 'f@example.com', data: { k: [1, { a: 2 }] },
    channels: [{ providerId: PW, integrationIdentifier: integ.identifier, credentials: { deviceTokens: [`fz-tok-${i % 5}`] } }],
    topics: ['fz-topic'],
  });
  const seen = { 201: 0, 400: 0 };
  for (let i = 0; i < 300; i++) {
    let text = ndjson(Array.from({ length: 1 + (i % 3) }, (_, j) => mutate(base(i + j))));
    if (rnd() < 0.15) text = text.slice(0, Math.floor(rnd() * text.length));
    if (rnd() < 0.1) text = `${text}\u00ff\ufffe{`;
    const res = await importBody(Buffer.concat([Buffer.from(text), rnd() < 0.05 ? Buffer.from([0xc3, 0x28]) : Buffer.alloc(0)]));
    assert.ok(res.status === 201 || res.status === 400, `import ${i}: ${res.status} ${res.text.slice(0, 300)}\n${text.slice(0, 300)}`);
    if (res.status === 400) assert.match(res.json?.message ?? '', /^line \d+: |no subscriber/, res.text);
    seen[res.status]++;

    const bulk = mutate({ subscribers: [{ subscriberId: `fzb-${i % 5}`, lastName: 'L', data: { n: i } }, { subscriberId: `fzb-${i % 3}` }] });
    const b = await raw(h, 'POST', '/v1/subscribers/bulk', { body: bulk });
    assert.ok(b.status === 201 || b.status === 400, `bulk ${i}: ${b.status} ${b.text.slice(0, 300)}`);
  }
  assert.ok(seen[201] > 30 && seen[400] > 30, `both outcomes exercised: ${JSON.stringify(seen)}`);
  const after = await importBody(ndjson([base(0)]));
  assert.equal(after.status, 201, after.text);
});

test('import: a body over 64 MiB is a 413 JSON error; other routes keep 1 MiB', T, async () => {
  const first = uid('imp-huge');
  const head = Buffer.from(`${JSON.stringify({ subscriberId: first })}\n`);
  const body = Buffer.concat([head, Buffer.alloc(64 * MiB + 1 - head.length, 0x20)]);
  const res = await rawHttp(h, 'POST', '/v1/subscribers/import', { body, headers: NDJSON });
  assertErrorBody(res, 413, { includes: '67108864-byte limit' });
  await assertNoSubscriber(first);
  // (the same line in a body under the limit is imported below)

  // Without a valid API key the route takes no more than any other (a body is read before the
  // handler checks the key).
  const twoMiB = Buffer.concat([head, Buffer.alloc(2 * MiB, 0x20)]);
  for (const key of [null, 'wrong-key']) {
    assertErrorBody(await rawHttp(h, 'POST', '/v1/subscribers/import', { body: twoMiB, headers: NDJSON, key }), 413,
      { includes: '1048576-byte limit' });
  }
  const accepted = await rawHttp(h, 'POST', '/v1/subscribers/import', { body: twoMiB, headers: NDJSON });
  assert.equal(accepted.status, 201, accepted.text);

  const big = JSON.stringify({ subscribers: [{ subscriberId: uid('x'), data: { blob: 'x'.repeat(MiB) } }] });
  assertErrorBody(await rawHttp(h, 'POST', '/v1/subscribers/bulk', { body: big }), 413, { includes: '1048576-byte limit' });
  // A subscriber named "import" is still a subscriber of its own, under the usual limit.
  assertErrorBody(await rawHttp(h, 'PUT', '/v1/subscribers/import', { body: big }), 413, { includes: '1048576-byte limit' });
});
