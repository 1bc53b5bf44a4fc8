// Integrations through @novu/api: create, list, listActive, update, setAsPrimary,
// delete; secrets never returned in clear; environment isolation; auth errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertErrorBody, expectSdkError, novu, raw, startHerald, uid,
} from './harness.mjs';

const SECRET = 's3cret';
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

function webhookDto(overrides = {}) {
  const identifier = uid('hook');
  return {
    providerId: 'push-webhook',
    channel: 'push',
    credentials: { webhookUrl: 'http://127.0.0.1:9/hook', secretKey: SECRET },
    active: true,
    name: `Webhook ${identifier}`,
    identifier,
    ...overrides,
  };
}

function assertNoSecret(value, what) {
  const s = JSON.stringify(value);
  assert.ok(!s.includes(SECRET), `${what} must not contain the clear secretKey: ${s.slice(0, 1000)}`);
}

function assertIntegrationShape(i, dto) {
  assert.equal(typeof i.id, 'string', 'integration has an id');
  assert.ok(i.id.length > 0);
  assert.equal(typeof i.environmentId, 'string');
  assert.equal(typeof i.organizationId, 'string');
  assert.equal(i.providerId, dto.providerId);
  assert.equal(i.channel, 'push');
  assert.equal(i.name, dto.name);
  assert.equal(i.identifier, dto.identifier);
  assert.equal(i.active, dto.active);
  assert.equal(i.deleted, false);
  assert.equal(i.primary, false, 'push integrations are never primary');
}

test('create, list, listActive, update, setAsPrimary, delete', T, async () => {
  const dto = webhookDto();
  const created = await sdk.integrations.create(dto);
  assertIntegrationShape(created.result, dto);
  assertNoSecret(created.result, 'create result');
  const id = created.result.id;

  const other = await sdk.integrations.create(webhookDto());
  assert.notEqual(other.result.id, id);

  const list = await sdk.integrations.list();
  assert.ok(Array.isArray(list.result));
  const listed = list.result.find((i) => i.id === id);
  assert.ok(listed, 'new integration is listed');
  assertIntegrationShape(listed, dto);
  assert.ok(list.result.some((i) => i.id === other.result.id));
  assertNoSecret(list.result, 'list result');

  const active = await sdk.integrations.listActive();
  assert.ok(active.result.some((i) => i.id === id), 'active integration is in listActive');
  assert.ok(active.result.every((i) => i.active === true), 'listActive only returns active ones');
  assertNoSecret(active.result, 'listActive result');

  // rename
  const renamed = await sdk.integrations.update({ name: 'Renamed hook' }, id);
  assert.equal(renamed.result.id, id);
  assert.equal(renamed.result.name, 'Renamed hook');
  assert.equal(renamed.result.identifier, dto.identifier, 'identifier unchanged by rename');
  assert.equal(renamed.result.active, true);
  assertNoSecret(renamed.result, 'update result');
  const afterRename = await sdk.integrations.list();
  assert.equal(afterRename.result.find((i) => i.id === id)?.name, 'Renamed hook');

  // deactivate
  const deactivated = await sdk.integrations.update({ active: false }, id);
  assert.equal(deactivated.result.active, false);
  assert.equal(deactivated.result.name, 'Renamed hook');
  const active2 = await sdk.integrations.listActive();
  assert.ok(!active2.result.some((i) => i.id === id), 'deactivated integration left listActive');
  assert.ok(active2.result.some((i) => i.id === other.result.id));
  const list2 = await sdk.integrations.list();
  assert.equal(list2.result.find((i) => i.id === id)?.active, false, 'still listed, inactive');

  // push has no primary
  await expectSdkError(sdk.integrations.setAsPrimary(other.result.id), {
    cls: 'ErrorDto', status: 400, message: 'Channel push does not support primary',
  });

  // delete returns the remaining integrations
  const del = await sdk.integrations.delete(id);
  assert.ok(Array.isArray(del.result), 'delete returns a list');
  assert.ok(!del.result.some((i) => i.id === id), 'deleted one is gone from the returned list');
  assert.ok(del.result.some((i) => i.id === other.result.id), 'the other one remains');
  assertNoSecret(del.result, 'delete result');
  const list3 = await sdk.integrations.list();
  assert.ok(!list3.result.some((i) => i.id === id), 'deleted one is gone from list');
});

test('clear secretKey never appears on the wire', T, async () => {
  const dto = webhookDto();
  const created = await sdk.integrations.create(dto);
  for (const p of ['/v1/integrations', '/v1/integrations/active']) {
    const res = await raw(h, 'GET', p);
    assert.equal(res.status, 200);
    assert.ok(res.text.includes(created.result.id), `${p} lists the integration`);
    assert.ok(!res.text.includes(SECRET), `${p} must not contain the clear secretKey`);
  }
  const upd = await raw(h, 'PUT', `/v1/integrations/${created.result.id}`, {
    body: { credentials: { webhookUrl: 'http://127.0.0.1:9/other', secretKey: `${SECRET}-2` } },
  });
  assert.equal(upd.status, 200, upd.text);
  assert.ok(!upd.text.includes(SECRET), 'update response must not contain the clear secretKey');
});

test('duplicate identifier gives a typed 409', T, async () => {
  const dto = webhookDto();
  await sdk.integrations.create(dto);
  await expectSdkError(sdk.integrations.create({ ...dto, name: 'Second' }), { cls: 'ErrorDto', status: 409 });
  const list = await sdk.integrations.list();
  assert.equal(list.result.filter((i) => i.identifier === dto.identifier).length, 1, 'no second copy was stored');
});

test('unknown providerId is a 400 naming providerId', T, async () => {
  const res = await raw(h, 'POST', '/v1/integrations', {
    body: { providerId: 'no-such-provider', channel: 'push', credentials: {}, active: true, name: 'x' },
  });
  assertErrorBody(res, 400, { includes: 'providerId', path: '/v1/integrations' });
});

test('push-webhook without webhookUrl is a 400 naming credentials.webhookUrl', T, async () => {
  const identifier = uid('nourl');
  const res = await raw(h, 'POST', '/v1/integrations', {
    body: { providerId: 'push-webhook', channel: 'push', credentials: { secretKey: SECRET }, active: true, identifier },
  });
  assertErrorBody(res, 400, { includes: 'credentials.webhookUrl' });
  // The SDK sees the same thing as a typed error.
  await expectSdkError(sdk.integrations.create({
    providerId: 'push-webhook', channel: 'push', credentials: { secretKey: SECRET }, active: true, identifier,
  }), { cls: 'ErrorDto', status: 400, includes: 'credentials.webhookUrl' });
  const list = await sdk.integrations.list();
  assert.ok(!list.result.some((i) => i.identifier === identifier), 'nothing was stored');
});

test('environments are isolated', T, async () => {
  const prod = novu(h, h.prodKey);
  const devDto = webhookDto();
  const dev = await sdk.integrations.create(devDto);
  const prodDto = webhookDto();
  const prodCreated = await prod.integrations.create(prodDto);
  assert.notEqual(prodCreated.result.environmentId, dev.result.environmentId, 'different environments');

  const prodList = await prod.integrations.list();
  assert.ok(prodList.result.some((i) => i.id === prodCreated.result.id));
  assert.ok(!prodList.result.some((i) => i.id === dev.result.id || i.identifier === devDto.identifier),
    'dev integration must not be listed with the prod key');
  const prodActive = await prod.integrations.listActive();
  assert.ok(!prodActive.result.some((i) => i.id === dev.result.id));

  const devList = await sdk.integrations.list();
  assert.ok(!devList.result.some((i) => i.id === prodCreated.result.id),
    'prod integration must not be listed with the dev key');

  // The prod key cannot delete a dev integration.
  await expectSdkError(prod.integrations.delete(dev.result.id), { cls: 'ErrorDto', status: 404 });
  const devList2 = await sdk.integrations.list();
  assert.ok(devList2.result.some((i) => i.id === dev.result.id), 'dev integration survived');
});

test('invalid or missing API key is a typed 401', T, async () => {
  const bad = novu(h, 'not-a-real-key');
  await expectSdkError(bad.integrations.list(), { cls: 'ErrorDto', status: 401 });
  await expectSdkError(bad.integrations.create(webhookDto()), { cls: 'ErrorDto', status: 401 });
  const res = await raw(h, 'GET', '/v1/integrations', { key: null });
  assertErrorBody(res, 401);
  const wrongScheme = await raw(h, 'GET', '/v1/integrations', {
    key: null, headers: { authorization: `Bearer ${h.devKey}` },
  });
  assertErrorBody(wrongScheme, 401);
});
