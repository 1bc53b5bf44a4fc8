// Device tokens: subscribers.credentials.update / append / delete through @novu/api,
// integration selection, limits, Herald's devices route, and web-push subscriptions.
import assert from 'node:assert/strict';
import { createECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import * as components from '@novu/api/models/components/index.js';
import {
  assertErrorBody, expectSdkError, novu, raw, startHerald, uid,
} from './harness.mjs';

const T = { timeout: 30_000 };
const PW = 'push-webhook';

let h;
let sdk;
let intA; // first push-webhook integration (SDK result)

before(async () => {
  h = await startHerald();
  sdk = novu(h);
  intA = (await sdk.integrations.create(webhookDto())).result;
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
});

function webhookDto(extra = {}) {
  const identifier = uid('pw');
  return {
    providerId: PW,
    channel: 'push',
    credentials: { webhookUrl: 'http://127.0.0.1:9/hook', secretKey: 's3cret' },
    active: true,
    name: identifier,
    identifier,
    ...extra,
  };
}

async function newSubscriber(client = sdk) {
  const subscriberId = uid('sub');
  await client.subscribers.create({ subscriberId, firstName: 'Dev' });
  return subscriberId;
}

function pushChannels(subscriber, providerId = PW) {
  return (subscriber.channels ?? []).filter((c) => c.providerId === providerId);
}

function tokensOf(subscriber, integration) {
  const ch = pushChannels(subscriber).filter((c) => c.integrationId === integration.id);
  assert.equal(ch.length, 1, `exactly one channel for integration ${integration.identifier}: ${JSON.stringify(subscriber.channels)}`);
  assert.equal(ch[0].integrationIdentifier, integration.identifier);
  return ch[0].credentials.deviceTokens;
}

async function devices(server, subscriberId) {
  const res = await raw(server, 'GET', `/v1/subscribers/${encodeURIComponent(subscriberId)}/devices`);
  assert.equal(res.status, 200, res.text);
  assert.ok(Array.isArray(res.json?.data), `devices body is {data:[...]}: ${res.text}`);
  return res.json.data;
}

test('PUT replaces, PATCH appends (ordered, deduped), DELETE removes', T, async () => {
  const sub = await newSubscriber();

  const r1 = await sdk.subscribers.credentials.update(
    { providerId: PW, credentials: { deviceTokens: ['a', 'b'] } }, sub);
  assert.equal(r1.result.subscriberId, sub);
  assert.deepEqual(tokensOf(r1.result, intA), ['a', 'b']);

  const r2 = await sdk.subscribers.credentials.append(
    { providerId: PW, credentials: { deviceTokens: ['b', 'c'] } }, sub);
  assert.deepEqual(tokensOf(r2.result, intA), ['a', 'b', 'c']);

  const r3 = await sdk.subscribers.credentials.update(
    { providerId: PW, credentials: { deviceTokens: ['z'] } }, sub);
  assert.deepEqual(tokensOf(r3.result, intA), ['z']);
  assert.equal(pushChannels(r3.result).length, 1, 'still one channel');

  const got = await sdk.subscribers.retrieve(sub);
  assert.deepEqual(tokensOf(got.result, intA), ['z'], 'stored, not just echoed');

  const r4 = await sdk.subscribers.credentials.update(
    { providerId: PW, credentials: { deviceTokens: ['q', 'r', 'q'] } }, sub);
  assert.deepEqual(tokensOf(r4.result, intA), ['q', 'r'], 'PUT dedupes too');

  await sdk.subscribers.credentials.delete(sub, PW);
  const afterDel = await sdk.subscribers.retrieve(sub);
  assert.equal(pushChannels(afterDel.result).length, 0, `channel removed: ${JSON.stringify(afterDel.result.channels)}`);
  assert.equal((await devices(h, sub)).filter((d) => d.providerId === PW).length, 0, 'devices removed too');
});

test('credentials DELETE answers 204 with no body', T, async () => {
  const sub = await newSubscriber();
  await sdk.subscribers.credentials.update({ providerId: PW, credentials: { deviceTokens: ['x'] } }, sub);
  const res = await raw(h, 'DELETE', `/v1/subscribers/${sub}/credentials/${PW}`);
  assert.equal(res.status, 204);
  assert.equal(res.text, '');
});

test('integrationIdentifier picks the integration; without it the newest active one', T, async () => {
  const intB = (await sdk.integrations.create(webhookDto())).result; // newer than A
  const sub = await newSubscriber();

  const r1 = await sdk.subscribers.credentials.update(
    { providerId: PW, credentials: { deviceTokens: ['n1'] } }, sub);
  assert.equal(pushChannels(r1.result).length, 1);
  assert.deepEqual(tokensOf(r1.result, intB), ['n1'], 'newest active integration (B) is used');

  const r2 = await sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: ['o1'] } }, sub);
  assert.equal(pushChannels(r2.result).length, 2, 'one channel per integration');
  assert.deepEqual(tokensOf(r2.result, intA), ['o1']);
  assert.deepEqual(tokensOf(r2.result, intB), ['n1'], 'PUT on A leaves B alone');

  // Deactivate B: now A is the newest *active* one.
  await sdk.integrations.update({ active: false }, intB.id);
  const r3 = await sdk.subscribers.credentials.append(
    { providerId: PW, credentials: { deviceTokens: ['o2'] } }, sub);
  assert.deepEqual(tokensOf(r3.result, intA), ['o1', 'o2']);
  assert.deepEqual(tokensOf(r3.result, intB), ['n1']);

  // An inactive or unknown identifier is refused.
  await expectSdkError(sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intB.identifier, credentials: { deviceTokens: ['n2'] } }, sub),
  { cls: 'ErrorDto', status: 400 });
  await expectSdkError(sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: 'no-such-integration', credentials: { deviceTokens: ['n2'] } }, sub),
  { cls: 'ErrorDto', status: 400 });

  // DELETE by providerId removes the channels of every integration of that provider.
  await sdk.subscribers.credentials.delete(sub, PW);
  const got = await sdk.subscribers.retrieve(sub);
  assert.equal(pushChannels(got.result).length, 0);

  await sdk.integrations.update({ active: true }, intB.id);
});

test('no active integration for the provider is a 400 and changes nothing', T, async () => {
  const sub = await newSubscriber();
  await sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: ['keep'] } }, sub);
  await expectSdkError(sdk.subscribers.credentials.update(
    { providerId: 'expo', credentials: { deviceTokens: ['ExponentPushToken[abc]'] } }, sub),
  { cls: 'ErrorDto', status: 400 });
  await expectSdkError(sdk.subscribers.credentials.append(
    { providerId: 'fcm', credentials: { deviceTokens: ['fcm-token'] } }, sub),
  { cls: 'ErrorDto', status: 400 });
  const got = await sdk.subscribers.retrieve(sub);
  assert.deepEqual((got.result.channels ?? []).map((c) => c.providerId), [PW]);
  assert.deepEqual(tokensOf(got.result, intA), ['keep']);
});

test('credentials for an unknown subscriber are refused', T, async () => {
  const err = await expectSdkError(sdk.subscribers.credentials.update(
    { providerId: PW, credentials: { deviceTokens: ['t'] } }, uid('ghost')), { cls: 'ErrorDto' });
  assert.ok([400, 404].includes(err.statusCode), `400 or 404, got ${err.statusCode}`);
});

test('at most 100 tokens per channel', T, async () => {
  const sub = await newSubscriber();
  const hundred = Array.from({ length: 100 }, (_, i) => `tok-${i}`);
  const ok = await sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: hundred } }, sub);
  assert.deepEqual(tokensOf(ok.result, intA), hundred, '100 tokens are fine, order kept');

  await expectSdkError(sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: [...hundred, 'tok-100'] } }, sub),
  { cls: 'ErrorDto', status: 400 });
  await expectSdkError(sdk.subscribers.credentials.append(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: ['one-more'] } }, sub),
  { cls: 'ErrorDto', status: 400 });

  const got = await sdk.subscribers.retrieve(sub);
  assert.deepEqual(tokensOf(got.result, intA), hundred, 'refused updates are not half-applied');
});

test('devices route lists tokens with their state', T, async () => {
  const sub = await newSubscriber();
  await sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: ['d1', 'd2'] } }, sub);
  const list = await devices(h, sub);
  const mine = list.filter((d) => d.providerId === PW);
  assert.equal(mine.length, 2, JSON.stringify(list));
  assert.deepEqual(mine.map((d) => d.token).sort(), ['d1', 'd2']);
  for (const d of mine) {
    assert.equal(d.providerId, PW);
    assert.equal(d.integrationIdentifier, intA.identifier);
    assert.equal(d.status, 'active');
    assert.equal(typeof d.createdAt, 'string');
    assert.ok(!Number.isNaN(Date.parse(d.createdAt)), `createdAt is a date: ${d.createdAt}`);
    assert.ok('lastActiveAt' in d, 'lastActiveAt present');
    assert.equal(d.lastActiveAt, null, 'no delivery yet');
    assert.ok('lastFailureReason' in d, 'lastFailureReason present');
    assert.equal(d.lastFailureReason, null);
  }

  const res = await raw(h, 'GET', `/v1/subscribers/${uid('ghost')}/devices`);
  assertErrorBody(res, 404);
});

// ---------------------------------------------------------------- web push

function vapidKeys() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url'),
  ]);
  assert.equal(point.length, 65);
  return { publicKey: point.toString('base64url'), privateKey: jwk.d };
}

function p256dhPoint() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return ecdh.getPublicKey(); // 65-byte uncompressed point
}

function offCurvePoint() {
  const probe = createECDH('prime256v1');
  probe.generateKeys();
  const good = p256dhPoint();
  for (let i = 1; i < 256; i++) {
    const bad = Buffer.from(good);
    bad[64] ^= i;
    try { probe.computeSecret(bad); } catch { return bad; } // not on the curve
  }
  throw new Error('could not make an off-curve point');
}

function subscription(endpoint, { p256dh = p256dhPoint(), auth = randomBytes(16) } = {}) {
  return JSON.stringify({
    endpoint,
    keys: { p256dh: Buffer.from(p256dh).toString('base64url'), auth: Buffer.from(auth).toString('base64url') },
  });
}

async function createWebPushIntegration(server) {
  const keys = vapidKeys();
  const identifier = uid('wp');
  const res = await raw(server, 'POST', '/v1/integrations', {
    body: {
      providerId: 'web-push',
      channel: 'push',
      name: 'Web push',
      identifier,
      active: true,
      credentials: { apiKey: keys.publicKey, secretKey: keys.privateKey, from: 'mailto:ops@example.com' },
    },
  });
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(Object.keys(res.json), ['data']);
  assert.equal(res.json.data.providerId, 'web-push');
  assert.equal(res.json.data.channel, 'push');
  assert.equal(res.json.data.identifier, identifier);
  assert.equal(res.json.data.active, true);
  assert.ok(!res.text.includes(keys.privateKey), 'VAPID private key is not returned in clear');
  return { identifier, keys, id: res.json.data._id };
}

async function putWebPush(server, sub, tokens, method = 'PUT') {
  return raw(server, method, `/v1/subscribers/${encodeURIComponent(sub)}/credentials`, {
    body: { providerId: 'web-push', credentials: { deviceTokens: tokens } },
  });
}

// A web-push device's token is the PushSubscription (as JSON text, or as an object).
function endpointOf(d) {
  const sub = typeof d.token === 'string' ? JSON.parse(d.token) : d.token;
  return sub.endpoint;
}

function webPushDevices(list, endpoint) {
  return list.filter((d) => d.providerId === 'web-push' && (!endpoint || endpointOf(d) === endpoint));
}

test('web-push subscriptions are stored, listed and kept out of SDK channels', T, async () => {
  const wp = await createWebPushIntegration(h);
  const list0 = await sdk.integrations.list();
  assert.ok(list0.result.some((i) => i.identifier === wp.identifier && i.providerId === 'web-push'),
    'SDK integrations.list accepts a web-push integration');
  const listText = (await raw(h, 'GET', '/v1/integrations')).text;
  assert.ok(!listText.includes(wp.keys.privateKey), 'VAPID private key not in list');

  const sub = await newSubscriber();
  await sdk.subscribers.credentials.update(
    { providerId: PW, integrationIdentifier: intA.identifier, credentials: { deviceTokens: ['native-1'] } }, sub);

  const endpoint = 'https://push.example.com/send/abc';
  const res = await putWebPush(h, sub, [subscription(endpoint)]);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.data.subscriberId, sub);
  // The PUT answer is a subscriber the SDK can parse (no web-push entry in channels).
  components.SubscriberResponseDto$inboundSchema.parse(res.json.data);
  assert.ok(!(res.json.data.channels ?? []).some((c) => c.providerId === 'web-push'));

  const got = await sdk.subscribers.retrieve(sub);
  assert.ok(!(got.result.channels ?? []).some((c) => c.providerId === 'web-push'));
  assert.deepEqual(tokensOf(got.result, intA), ['native-1'], 'native channel untouched');

  const list = await devices(h, sub);
  const wpDevices = webPushDevices(list, endpoint);
  assert.equal(wpDevices.length, 1, JSON.stringify(list));
  const d = wpDevices[0];
  assert.equal(d.integrationIdentifier, wp.identifier);
  assert.equal(d.status, 'active');
  assert.equal(d.lastActiveAt, null);
  assert.equal(d.lastFailureReason, null);
  assert.ok(!Number.isNaN(Date.parse(d.createdAt)));
  assert.equal(list.filter((x) => x.providerId === PW).length, 1, 'push-webhook token still listed');
});

test('web-push: one entry per endpoint', T, async () => {
  await createWebPushIntegration(h);
  const sub = await newSubscriber();
  const endpoint = 'https://push.example.com/send/same';
  const first = subscription(endpoint);
  const sameEndpointNewKeys = subscription(endpoint);
  const res = await putWebPush(h, sub, [first, sameEndpointNewKeys]);
  assert.equal(res.status, 200, res.text);
  assert.equal(webPushDevices(await devices(h, sub), endpoint).length, 1, 'same endpoint counted once');

  // Same subscription with its keys reordered, appended.
  const parsed = JSON.parse(first);
  const reordered = JSON.stringify({ keys: { auth: parsed.keys.auth, p256dh: parsed.keys.p256dh }, endpoint });
  const res2 = await putWebPush(h, sub, [reordered], 'PATCH');
  assert.equal(res2.status, 200, res2.text);
  assert.equal(webPushDevices(await devices(h, sub), endpoint).length, 1, 'append of the same endpoint adds nothing');

  const other = 'https://push.example.com/send/other';
  const res3 = await putWebPush(h, sub, [subscription(other)], 'PATCH');
  assert.equal(res3.status, 200, res3.text);
  const all = webPushDevices(await devices(h, sub));
  assert.equal(all.length, 2);
  assert.deepEqual(all.map((x) => endpointOf(x)).sort(), [other, endpoint].sort());
});

test('web-push: malformed subscriptions are refused and nothing is half-applied', T, async () => {
  await createWebPushIntegration(h);
  const sub = await newSubscriber();
  const goodEndpoint = 'https://push.example.com/send/good';
  assert.equal((await putWebPush(h, sub, [subscription(goodEndpoint)])).status, 200);

  const fresh = subscription('https://push.example.com/send/fresh');
  const bad = {
    'off-curve p256dh': subscription('https://push.example.com/send/c', { p256dh: offCurvePoint() }),
    '15-byte auth': subscription('https://push.example.com/send/d', { auth: randomBytes(15) }),
    '64-byte p256dh': subscription('https://push.example.com/send/e', { p256dh: p256dhPoint().subarray(0, 64) }),
    'no keys': JSON.stringify({ endpoint: 'https://push.example.com/send/f' }),
    'not JSON': 'https://push.example.com/send/g',
    'not a URL': subscription('push.example.com/send/h'),
  };
  for (const [what, token] of Object.entries(bad)) {
    const res = await putWebPush(h, sub, [fresh, token], 'PATCH');
    assertErrorBody(res, 400);
    const res2 = await putWebPush(h, sub, [token]);
    assert.equal(res2.status, 400, `${what}: ${res2.text}`);
  }
  const all = webPushDevices(await devices(h, sub));
  assert.deepEqual(all.map((x) => endpointOf(x)), [goodEndpoint], 'only the good subscription is stored');
});

test('web-push: bad VAPID keys are refused', T, async () => {
  const keys = vapidKeys();
  for (const credentials of [
    { apiKey: 'not-a-key', secretKey: keys.privateKey, from: 'mailto:ops@example.com' },
    { apiKey: keys.publicKey, secretKey: randomBytes(5).toString('base64url'), from: 'mailto:ops@example.com' },
  ]) {
    const res = await raw(h, 'POST', '/v1/integrations', {
      body: { providerId: 'web-push', channel: 'push', identifier: uid('badwp'), active: true, credentials },
    });
    assertErrorBody(res, 400);
  }
});

test('web-push: http endpoints are refused unless private targets are allowed', { timeout: 40_000 }, async () => {
  const strict = await startHerald({ env: { HERALD_ALLOW_PRIVATE_TARGETS: undefined } });
  try {
    await createWebPushIntegration(strict);
    const s = novu(strict);
    const sub = await newSubscriber(s);
    const ok = await putWebPush(strict, sub, [subscription('https://push.example.com/send/tls')]);
    assert.equal(ok.status, 200, `https endpoint accepted: ${ok.text}`);
    const res = await putWebPush(strict, sub, [subscription('http://push.example.com/send/plain')], 'PATCH');
    assertErrorBody(res, 400);
    const list = webPushDevices(await devices(strict, sub));
    assert.deepEqual(list.map((x) => endpointOf(x)), ['https://push.example.com/send/tls']);
  } finally {
    await strict.stop();
  }
});
