// Topics and topic subscriptions through @novu/api (v2 routes).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectSdkError, novu, raw, startHerald, uid } from './harness.mjs';

const T = { timeout: 30_000 };

let h;
let sdk;

before(async () => {
  h = await startHerald();
  sdk = novu(h);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
});

async function newSubscribers(n) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const subscriberId = uid(`ts${i}`);
    await sdk.subscribers.create({ subscriberId, firstName: `T${i}` });
    ids.push(subscriberId);
  }
  return ids;
}

async function subscribedIds(key) {
  const res = await sdk.topics.subscriptions.list({ topicKey: key, limit: 100 });
  for (const item of res.result.data) assert.equal(item.topic.key, key);
  return res.result.data.map((s) => s.subscriber.subscriberId).sort();
}

test('create, get, list', T, async () => {
  const key = uid('news');
  const created = await sdk.topics.create({ key, name: 'News', data: { region: 'eu' } });
  assert.equal(typeof created.result.id, 'string');
  assert.ok(created.result.id.length > 0);
  assert.equal(created.result.key, key);
  assert.equal(created.result.name, 'News');

  const got = await sdk.topics.get(key);
  assert.equal(got.result.id, created.result.id);
  assert.equal(got.result.key, key);
  assert.equal(got.result.name, 'News');

  const list = await sdk.topics.list({});
  assert.equal(typeof list.result.totalCount, 'number');
  assert.ok(list.result.totalCount >= 1);
  const listed = list.result.data.find((t) => t.key === key);
  assert.ok(listed, 'created topic is listed');
  assert.equal(listed.id, created.result.id);
  assert.equal(listed.name, 'News');

  await expectSdkError(sdk.topics.get(uid('missing')), { cls: 'ErrorDto', status: 404 });
});

test('create with failIfExists=true on an existing key rejects with 409', T, async () => {
  const key = uid('dup');
  const created = await sdk.topics.create({ key, name: 'Original' });
  const err = await expectSdkError(sdk.topics.create({ key, name: 'Other' }, true),
    { cls: 'TopicResponseDto', status: 409 });
  assert.equal(err.key, key, 'the 409 body is the existing topic');
  const got = await sdk.topics.get(key);
  assert.equal(got.result.id, created.result.id);
  assert.equal(got.result.name, 'Original', 'a rejected create changes nothing');
});

test('topics list pages with a cursor', T, async () => {
  const prefix = uid('pg');
  const keys = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
  for (const key of keys) await sdk.topics.create({ key });
  const all = (await sdk.topics.list({ limit: 100 })).result;
  const seen = [];
  let after;
  for (let pages = 1; ; pages++) {
    assert.ok(pages <= 100, 'paging terminates');
    const page = (await sdk.topics.list(after ? { limit: 1, after } : { limit: 1 })).result;
    assert.ok(page.data.length <= 1);
    assert.equal(page.totalCount, all.totalCount);
    seen.push(...page.data.map((t) => t.key));
    if (page.next === null) break;
    after = page.next;
  }
  assert.equal(seen.length, all.totalCount);
  assert.equal(new Set(seen).size, seen.length, 'no topic twice');
  for (const key of keys) assert.ok(seen.includes(key), `${key} reached by paging`);
});

test('subscriptions: create, list, delete (DELETE with a JSON body)', T, async () => {
  const key = uid('orders');
  await sdk.topics.create({ key, name: 'Orders' });
  const [s1, s2] = await newSubscribers(2);

  const created = await sdk.topics.subscriptions.create({ subscriberIds: [s1, s2] }, key);
  assert.deepEqual(created.result.meta, { totalCount: 2, successful: 2, failed: 0 });
  assert.equal(created.result.data.length, 2);
  for (const item of created.result.data) {
    assert.equal(typeof item.id, 'string');
    assert.equal(item.topic.key, key);
    assert.ok(item.subscriber, 'subscriber is set');
    assert.ok(!Number.isNaN(Date.parse(item.createdAt)));
  }
  assert.deepEqual(created.result.data.map((d) => d.subscriber.subscriberId).sort(), [s1, s2].sort());
  assert.ok(!created.result.errors?.length, `no errors: ${JSON.stringify(created.result.errors)}`);

  const list = await sdk.topics.subscriptions.list({ topicKey: key });
  assert.equal(list.result.totalCount, 2);
  assert.equal(list.result.next, null);
  assert.deepEqual(list.result.data.map((s) => s.subscriber.subscriberId).sort(), [s1, s2].sort());
  for (const item of list.result.data) {
    assert.equal(item.topic.key, key);
    assert.equal(typeof item.identifier, 'string');
    assert.equal(typeof item.subscriber.id, 'string');
  }

  // Adding an existing member again does not duplicate it.
  const again = await sdk.topics.subscriptions.create({ subscriberIds: [s2] }, key);
  assert.equal(again.result.meta.failed, 0);
  assert.deepEqual(await subscribedIds(key), [s1, s2].sort());

  const removed = await sdk.topics.subscriptions.delete({ subscriberIds: [s1] }, key);
  assert.equal(removed.result.meta.successful, 1);
  assert.equal(removed.result.meta.failed, 0);
  assert.deepEqual(removed.result.data.map((d) => d.subscriber?.subscriberId), [s1]);
  assert.deepEqual(await subscribedIds(key), [s2]);

  const filtered = await sdk.topics.subscriptions.list({ topicKey: key, subscriberId: s2 });
  assert.deepEqual(filtered.result.data.map((s) => s.subscriber.subscriberId), [s2]);
});

test('subscriptions: unknown subscribers are reported, known ones still added', T, async () => {
  const key = uid('mixed');
  await sdk.topics.create({ key });
  const [s1] = await newSubscribers(1);
  const ghost = uid('ghost');
  const res = await sdk.topics.subscriptions.create({ subscriberIds: [s1, ghost] }, key);
  assert.equal(res.result.meta.totalCount, 2);
  assert.equal(res.result.meta.successful, 1);
  assert.equal(res.result.meta.failed, 1);
  assert.ok(res.result.errors?.some((e) => e.subscriberId === ghost), JSON.stringify(res.result.errors));
  assert.deepEqual(await subscribedIds(key), [s1]);
});

test('subscriptions list pages with a cursor', T, async () => {
  const key = uid('many');
  await sdk.topics.create({ key });
  const ids = await newSubscribers(3);
  await sdk.topics.subscriptions.create({ subscriberIds: ids }, key);
  const seen = [];
  let after;
  for (let pages = 1; ; pages++) {
    assert.ok(pages <= 10, 'paging terminates');
    const page = (await sdk.topics.subscriptions.list(
      after ? { topicKey: key, limit: 2, after } : { topicKey: key, limit: 2 })).result;
    assert.equal(page.totalCount, 3);
    assert.ok(page.data.length <= 2);
    seen.push(...page.data.map((s) => s.subscriber.subscriberId));
    if (page.next === null) break;
    after = page.next;
  }
  assert.deepEqual(seen.sort(), [...ids].sort());
});

test('topics are per environment', T, async () => {
  const key = uid('envtopic');
  await sdk.topics.create({ key });
  const prod = novu(h, h.prodKey);
  await expectSdkError(prod.topics.get(key), { cls: 'ErrorDto', status: 404 });
  const prodList = await prod.topics.list({ limit: 100 });
  assert.ok(!prodList.result.data.some((t) => t.key === key));
});

test('topic responses use the {data} envelope', T, async () => {
  const key = uid('wire');
  const res = await raw(h, 'POST', '/v2/topics', { body: { key, name: 'Wire' } });
  assert.ok([200, 201].includes(res.status), res.text);
  assert.deepEqual(Object.keys(res.json), ['data']);
  assert.equal(res.json.data.key, key);
  assert.equal(typeof res.json.data._id, 'string');
  const list = await raw(h, 'GET', '/v2/topics?limit=100');
  assert.equal(list.status, 200);
  for (const k of ['data', 'next', 'previous', 'totalCount', 'totalCountCapped']) {
    assert.ok(k in list.json, `page has ${k}`);
  }
});
