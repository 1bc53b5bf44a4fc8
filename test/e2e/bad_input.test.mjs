// Hostile and malformed HTTP input: every case gets a clear JSON 4xx, nothing is
// half-applied, and the server keeps serving. Also: any path prefix works.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertErrorBody, expectSdkError, novu, raw, rawHttp, startHerald, uid,
} from './harness.mjs';

const T = { timeout: 30_000 };
const MiB = 1024 * 1024;

let h;
let sdk;

before(async () => {
  h = await startHerald();
  sdk = novu(h);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
});

async function assertNoSubscriber(subscriberId) {
  await expectSdkError(sdk.subscribers.retrieve(subscriberId), { cls: 'ErrorDto', status: 404 });
}

test('malformed JSON is a 400 with the Novu error body', T, async () => {
  for (const body of ['{"subscriberId":', '{subscriberId: "x"}', '{"subscriberId":"x",}', 'not json', '{"a":1}{"b":2}']) {
    const res = await raw(h, 'POST', '/v2/subscribers', { body });
    assertErrorBody(res, 400, { path: '/v2/subscribers' });
  }
});

test('wrong types are a 400', T, async () => {
  const cases = [
    ['POST', '/v2/subscribers', { subscriberId: 5 }],
    ['POST', '/v2/subscribers', { subscriberId: uid('t'), firstName: 7 }],
    ['POST', '/v2/subscribers', { subscriberId: uid('t'), data: [1, 2] }],
    ['POST', '/v2/subscribers', ['not', 'an', 'object']],
    ['POST', '/v1/integrations', { providerId: 'push-webhook', channel: 'push', active: 'yes', credentials: { webhookUrl: 'http://127.0.0.1:9/h', secretKey: 'k' } }],
    ['POST', '/v2/topics', { key: { nested: true } }],
  ];
  for (const [method, path, body] of cases) {
    const res = await raw(h, method, path, { body });
    assertErrorBody(res, 400);
  }
  const res = await raw(h, 'POST', '/v2/subscribers', { body: { subscriberId: 5 } });
  assertErrorBody(res, 400, { includes: 'subscriberId' });
});

test('a body over 1 MiB is a 413', T, async () => {
  const subscriberId = uid('big');
  const big = JSON.stringify({ subscriberId, data: { blob: 'x'.repeat(MiB + 16) } });
  assert.ok(big.length > MiB);
  const res = await rawHttp(h, 'POST', '/v2/subscribers', { body: big });
  assertErrorBody(res, 413);
  const chunked = await rawHttp(h, 'POST', '/v2/subscribers', { body: big, chunked: true });
  assert.equal(chunked.status, 413, `chunked oversize body: ${chunked.status} ${chunked.text?.slice(0, 300)}`);
  await assertNoSubscriber(subscriberId);
});

// n nested objects: {"a":{"a":...1...}}
function nested(n) {
  let inner = '1';
  for (let i = 0; i < n; i++) inner = `{"a":${inner}}`;
  return inner;
}

test('JSON nested 65 deep is a 400; moderate nesting is fine', T, async () => {
  const deepId = uid('deep');
  const body = `{"subscriberId":"${deepId}","data":${nested(64)}}`; // root + 64 = 65 levels
  assertErrorBody(await raw(h, 'POST', '/v2/subscribers', { body }), 400);
  await assertNoSubscriber(deepId);

  const okId = uid('shallow');
  const okBody = `{"subscriberId":"${okId}","data":${nested(8)}}`;
  const ok = await raw(h, 'POST', '/v2/subscribers', { body: okBody });
  assert.equal(ok.status, 201, ok.text);

  // Very deep arrays must not blow the parser's stack.
  const bomb = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
  assertErrorBody(await raw(h, 'POST', '/v2/subscribers', { body: bomb }), 400);
  const objBomb = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
  assertErrorBody(await raw(h, 'POST', '/v2/subscribers', { body: objBomb }), 400);
});

test('invalid UTF-8 inside a JSON string is a 400', T, async () => {
  const badSequences = [
    [0xff, 0xfe], // never valid
    [0xc0, 0xaf], // overlong '/'
    [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded in UTF-8
    [0xe2, 0x82], // truncated sequence
  ];
  for (const seq of badSequences) {
    const subscriberId = uid('utf');
    const body = Buffer.concat([
      Buffer.from(`{"subscriberId":"${subscriberId}","firstName":"a`), Buffer.from(seq), Buffer.from('b"}'),
    ]);
    const res = await raw(h, 'POST', '/v2/subscribers', { body });
    assertErrorBody(res, 400);
    await assertNoSubscriber(subscriberId);
  }
  // Valid multibyte text round-trips.
  const okId = uid('utf-ok');
  const ok = await raw(h, 'POST', '/v2/subscribers', { body: { subscriberId: okId, firstName: 'Zoë 🚀' } });
  assert.equal(ok.status, 201, ok.text);
  assert.equal((await sdk.subscribers.retrieve(okId)).result.firstName, 'Zoë 🚀');
});

test('unknown provider ids are a 400', T, async () => {
  assertErrorBody(await raw(h, 'POST', '/v1/integrations', {
    body: { providerId: 'carrier-pigeon', channel: 'push', credentials: {}, active: true },
  }), 400, { includes: 'providerId' });
  const subscriberId = uid('prov');
  await sdk.subscribers.create({ subscriberId });
  assertErrorBody(await raw(h, 'PUT', `/v1/subscribers/${subscriberId}/credentials`, {
    body: { providerId: 'carrier-pigeon', credentials: { deviceTokens: ['t'] } },
  }), 400);
});

test('empty ids are a 400', T, async () => {
  assertErrorBody(await raw(h, 'POST', '/v2/subscribers', { body: { subscriberId: '' } }), 400);
  assertErrorBody(await raw(h, 'POST', '/v2/subscribers', { body: {} }), 400);
  assertErrorBody(await raw(h, 'POST', '/v2/topics', { body: { key: '' } }), 400);
  assertErrorBody(await raw(h, 'POST', '/v2/workflows', {
    body: { name: 'x', workflowId: '', steps: [] },
  }), 400);
  const subscriberId = uid('emptytok');
  await sdk.subscribers.create({ subscriberId });
  await sdk.integrations.create({
    providerId: 'push-webhook', channel: 'push', active: true, identifier: uid('pw'),
    credentials: { webhookUrl: 'http://127.0.0.1:9/h', secretKey: 'k' },
  });
  assertErrorBody(await raw(h, 'PUT', `/v1/subscribers/${subscriberId}/credentials`, {
    body: { providerId: 'push-webhook', credentials: { deviceTokens: [''] } },
  }), 400);
});

test('unknown route is a 404 JSON, wrong method a 405 JSON', T, async () => {
  assertErrorBody(await raw(h, 'GET', '/v1/no-such-route'), 404);
  assertErrorBody(await raw(h, 'GET', '/v9/subscribers'), 404);
  assertErrorBody(await raw(h, 'PATCH', '/v1/integrations'), 405);
  assertErrorBody(await raw(h, 'PUT', '/v2/subscribers'), 405);
});

test('any path prefix works as the SDK serverURL', T, async () => {
  const prefixed = novu(h, h.devKey, `${h.url}/novu`);
  const subscriberId = uid('prefixed');
  const created = await prefixed.subscribers.create({ subscriberId, firstName: 'Pre' });
  assert.equal(created.result.subscriberId, subscriberId);
  const got = await sdk.subscribers.retrieve(subscriberId);
  assert.equal(got.result.firstName, 'Pre', 'same data with and without the prefix');
  const list = await prefixed.integrations.list();
  assert.ok(Array.isArray(list.result));
  const deeper = novu(h, h.devKey, `${h.url}/a/b/c`);
  assert.equal((await deeper.subscribers.retrieve(subscriberId)).result.subscriberId, subscriberId);
});

test('the server is still healthy after all of this', T, async () => {
  const res = await fetch(`${h.url}/healthz`);
  assert.equal(res.status, 200);
  const subscriberId = uid('after');
  const created = await sdk.subscribers.create({ subscriberId });
  assert.equal(created.result.subscriberId, subscriberId);
  assert.equal(h.process.exitCode, null, 'process still running');
});

test('an unusable numeric setting is reported and its default used', T, async () => {
  const h2 = await startHerald({ env: { HERALD_MAX_IN_FLIGHT: 'lots', HERALD_HTTP_TIMEOUT_MS: '-5' } });
  try {
    assert.equal((await fetch(`${h2.url}/healthz`)).status, 200);
    const log = h2.stderr();
    assert.match(log, /config_ignored variable=HERALD_MAX_IN_FLIGHT value="lots".*using=4096/);
    assert.match(log, /config_ignored variable=HERALD_HTTP_TIMEOUT_MS value="-5".*using=15000/);
  } finally {
    await h2.stop();
  }
});
