// Subscribers through @novu/api (v2 routes) and the legacy @novu/node (v1 routes).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Novu as LegacyNovu } from '@novu/node';
import { expectSdkError, novu, raw, startHerald, uid } from './harness.mjs';

const T = { timeout: 30_000 };

let h;
let sdk;
// Every subscriber alive in the dev environment, so search can be checked exactly.
const alive = new Set();

before(async () => {
  h = await startHerald();
  sdk = novu(h);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
});

function assertSubscriberShape(s) {
  assert.equal(typeof s.subscriberId, 'string');
  assert.equal(typeof s.organizationId, 'string');
  assert.equal(typeof s.environmentId, 'string');
  assert.equal(s.deleted, false);
  assert.ok(!Number.isNaN(Date.parse(s.createdAt)), `createdAt is a date: ${s.createdAt}`);
  assert.ok(!Number.isNaN(Date.parse(s.updatedAt)), `updatedAt is a date: ${s.updatedAt}`);
}

test('create, retrieve, patch, delete', T, async () => {
  const subscriberId = uid('sub');
  const created = await sdk.subscribers.create({
    subscriberId,
    firstName: 'Ann',
    lastName: 'Lee',
    email: 'ann@example.com',
    phone: '+15550001111',
    locale: 'en_US',
    timezone: 'Europe/Berlin',
    data: { plan: 'pro', seats: 3 },
  });
  alive.add(subscriberId);
  const s = created.result;
  assertSubscriberShape(s);
  assert.equal(s.subscriberId, subscriberId);
  assert.equal(s.firstName, 'Ann');
  assert.equal(s.lastName, 'Lee');
  assert.equal(s.email, 'ann@example.com');
  assert.equal(s.phone, '+15550001111');
  assert.equal(s.locale, 'en_US');
  assert.equal(s.timezone, 'Europe/Berlin');
  assert.deepEqual(s.data, { plan: 'pro', seats: 3 });

  const got = await sdk.subscribers.retrieve(subscriberId);
  assertSubscriberShape(got.result);
  assert.equal(got.result.subscriberId, subscriberId);
  assert.equal(got.result.firstName, 'Ann');
  assert.equal(got.result.email, 'ann@example.com');
  assert.deepEqual(got.result.data, { plan: 'pro', seats: 3 });
  assert.equal(got.result.createdAt, s.createdAt);

  const patched = await sdk.subscribers.patch({ lastName: 'Smith', data: { plan: 'team' } }, subscriberId);
  assertSubscriberShape(patched.result);
  assert.equal(patched.result.lastName, 'Smith');
  assert.equal(patched.result.firstName, 'Ann', 'fields not in the patch are kept');
  assert.equal(patched.result.email, 'ann@example.com');
  assert.deepEqual(patched.result.data, { plan: 'team' });

  const got2 = await sdk.subscribers.retrieve(subscriberId);
  assert.equal(got2.result.lastName, 'Smith');
  assert.equal(got2.result.firstName, 'Ann');
  assert.deepEqual(got2.result.data, { plan: 'team' });

  const del = await sdk.subscribers.delete(subscriberId);
  alive.delete(subscriberId);
  assert.equal(del.result.acknowledged, true);
  assert.equal(typeof del.result.status, 'string');

  await expectSdkError(sdk.subscribers.retrieve(subscriberId), { cls: 'ErrorDto', status: 404 });
  await expectSdkError(sdk.subscribers.patch({ firstName: 'X' }, subscriberId), { cls: 'ErrorDto', status: 404 });
  await expectSdkError(sdk.subscribers.delete(subscriberId), { cls: 'ErrorDto', status: 404 });
});

test('create with failIfExists=true on an existing subscriber rejects with 409', T, async () => {
  const subscriberId = uid('dup');
  await sdk.subscribers.create({ subscriberId, firstName: 'First' });
  alive.add(subscriberId);
  const err = await expectSdkError(
    sdk.subscribers.create({ subscriberId, firstName: 'Second' }, true),
    { cls: 'SubscriberResponseDto', status: 409 },
  );
  assert.equal(err.subscriberId, subscriberId, 'the 409 body is the existing subscriber');
  const got = await sdk.subscribers.retrieve(subscriberId);
  assert.equal(got.result.firstName, 'First', 'a rejected create changes nothing');
});

test('create with failIfExists=true on a new id succeeds', T, async () => {
  const subscriberId = uid('fresh');
  const created = await sdk.subscribers.create({ subscriberId }, true);
  alive.add(subscriberId);
  assert.equal(created.result.subscriberId, subscriberId);
});

test('path parameters are percent-decoded', T, async () => {
  const subscriberId = `u 1/x-${uid('enc')}`;
  const created = await sdk.subscribers.create({ subscriberId, firstName: 'Enc' });
  alive.add(subscriberId);
  assert.equal(created.result.subscriberId, subscriberId);
  const got = await sdk.subscribers.retrieve(subscriberId);
  assert.equal(got.result.subscriberId, subscriberId);
  assert.equal(got.result.firstName, 'Enc');
});

test('search pages with a cursor', T, async () => {
  const mine = [];
  for (let i = 0; i < 5; i++) {
    const subscriberId = uid(`page${i}`);
    await sdk.subscribers.create({ subscriberId, firstName: `Page${i}` });
    alive.add(subscriberId);
    mine.push(subscriberId);
  }
  const seen = [];
  let after;
  let pages = 0;
  let totalCount;
  for (;;) {
    const page = await sdk.subscribers.search(after ? { limit: 2, after } : { limit: 2 });
    pages++;
    assert.ok(pages <= 50, 'paging terminates');
    const r = page.result;
    assert.ok(Array.isArray(r.data));
    assert.ok(r.data.length <= 2, `page size honours limit: ${r.data.length}`);
    assert.equal(typeof r.totalCount, 'number');
    assert.equal(typeof r.totalCountCapped, 'boolean');
    if (totalCount === undefined) totalCount = r.totalCount;
    for (const s of r.data) {
      assertSubscriberShape(s);
      seen.push(s.subscriberId);
    }
    if (r.next === null) break;
    assert.equal(typeof r.next, 'string');
    assert.equal(r.data.length, 2, 'only the last page may be short');
    after = r.next;
  }
  assert.equal(new Set(seen).size, seen.length, `no subscriber appears twice: ${seen}`);
  assert.deepEqual(new Set(seen), alive, 'paging returns exactly the live subscribers');
  for (const id of mine) assert.ok(seen.includes(id));
  assert.equal(totalCount, alive.size, 'totalCount counts every live subscriber');
  assert.ok(pages <= Math.ceil(alive.size / 2) + 1, `no runaway paging: ${pages} pages`);

  const one = await sdk.subscribers.search({ limit: 2, subscriberId: mine[3] });
  assert.ok(one.result.data.some((s) => s.subscriberId === mine[3]), 'filter by subscriberId finds it');
});

test('subscribers are per environment', T, async () => {
  const subscriberId = uid('envsub');
  await sdk.subscribers.create({ subscriberId });
  alive.add(subscriberId);
  const prod = novu(h, h.prodKey);
  await expectSdkError(prod.subscribers.retrieve(subscriberId), { cls: 'ErrorDto', status: 404 });
  const prodSearch = await prod.subscribers.search({ limit: 100 });
  assert.ok(!prodSearch.result.data.some((s) => s.subscriberId === subscriberId));
});

test('@novu/node v1: identify, get, update, delete', T, async () => {
  const legacy = new LegacyNovu(h.devKey, { backendUrl: h.url });
  const subscriberId = uid('legacy');

  const identified = await legacy.subscribers.identify(subscriberId, {
    firstName: 'Leg', lastName: 'Acy', email: 'leg@example.com', data: { a: 1 },
  });
  alive.add(subscriberId);
  assert.ok([200, 201].includes(identified.status), `identify status ${identified.status}`);
  const s = identified.data.data;
  assert.equal(s.subscriberId, subscriberId);
  assert.equal(s.firstName, 'Leg');
  assert.equal(s.email, 'leg@example.com');
  assert.deepEqual(s.data, { a: 1 });
  assert.equal(typeof s._id, 'string', 'v1 shape keeps wire names (_id)');
  assert.equal(typeof s._environmentId, 'string');

  const got = await legacy.subscribers.get(subscriberId);
  assert.equal(got.status, 200);
  assert.equal(got.data.data.subscriberId, subscriberId);
  assert.equal(got.data.data.lastName, 'Acy');

  const updated = await legacy.subscribers.update(subscriberId, { lastName: 'Updated', phone: '+15550002222' });
  assert.equal(updated.status, 200);
  assert.equal(updated.data.data.lastName, 'Updated');
  assert.equal(updated.data.data.phone, '+15550002222');
  assert.equal(updated.data.data.firstName, 'Leg', 'update keeps other fields');

  // v1 and v2 see the same subscriber
  const v2 = await sdk.subscribers.retrieve(subscriberId);
  assert.equal(v2.result.lastName, 'Updated');

  const identifiedAgain = await legacy.subscribers.identify(subscriberId, { firstName: 'Again' });
  assert.equal(identifiedAgain.data.data.firstName, 'Again', 'identify upserts');
  assert.equal(identifiedAgain.data.data.lastName, 'Updated');

  const deleted = await legacy.subscribers.delete(subscriberId);
  alive.delete(subscriberId);
  assert.equal(deleted.status, 200);
  assert.equal(deleted.data.data.acknowledged, true);
  assert.equal(deleted.data.data.status, 'deleted');

  await assert.rejects(legacy.subscribers.get(subscriberId), (e) => {
    assert.equal(e.response?.status, 404, `expected a 404 from axios, got ${e.message}`);
    return true;
  });
  await expectSdkError(sdk.subscribers.retrieve(subscriberId), { cls: 'ErrorDto', status: 404 });
});

test('single-entity responses are wrapped in {data} (v1 and v2)', T, async () => {
  const subscriberId = uid('wrap');
  const res = await raw(h, 'POST', '/v2/subscribers', { body: { subscriberId } });
  alive.add(subscriberId);
  assert.equal(res.status, 201, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(res.json), ['data']);
  assert.equal(res.json.data.subscriberId, subscriberId);
  const get = await raw(h, 'GET', `/v1/subscribers/${subscriberId}`);
  assert.equal(get.status, 200, get.text);
  assert.deepEqual(Object.keys(get.json), ['data']);
  assert.equal(get.json.data.subscriberId, subscriberId);
});
