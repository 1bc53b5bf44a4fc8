// Durability: data survives a graceful restart (SIGTERM) and a crash (SIGKILL)
// on the same data directory.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  makeTempDir, novu, raw, removeTempDir, startHerald, uid,
} from './harness.mjs';

const T = { timeout: 60_000 };
const SECRET = 'restart-s3cret';

let dataDir;
let keys;
let h; // the currently running server

before(async () => {
  dataDir = makeTempDir('herald-restart-');
  await start();
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  removeTempDir(dataDir);
});

async function start() {
  h = await startHerald({ dataDir, env: keys });
  if (!keys) {
    keys = { HERALD_DEVELOPMENT_API_KEY: h.devKey, HERALD_PRODUCTION_API_KEY: h.prodKey };
  }
  assert.equal(h.devKey, keys.HERALD_DEVELOPMENT_API_KEY);
  return novu(h);
}

// Everything created before the first restart, checked after each one.
const state = {};

async function seed(sdk) {
  const identifier = uid('keep-hook');
  const integration = (await sdk.integrations.create({
    providerId: 'push-webhook', channel: 'push', active: true, name: 'Kept hook', identifier,
    credentials: { webhookUrl: 'http://127.0.0.1:9/hook', secretKey: SECRET },
  })).result;

  const subscriberId = uid('keep-sub');
  await sdk.subscribers.create({ subscriberId, firstName: 'Kept', email: 'kept@example.com', data: { n: 1 } });
  await sdk.subscribers.credentials.update({
    providerId: 'push-webhook', integrationIdentifier: identifier, credentials: { deviceTokens: ['t1', 't2'] },
  }, subscriberId);

  const topicKey = uid('keep-topic');
  await sdk.topics.create({ key: topicKey, name: 'Kept topic' });
  await sdk.topics.subscriptions.create({ subscriberIds: [subscriberId] }, topicKey);

  const workflowId = uid('keep-wf');
  await sdk.workflows.create({
    name: 'Kept workflow', workflowId, active: true,
    steps: [{ name: 'Push', type: 'push', controlValues: { subject: 'Hi {{subscriber.firstName}}', body: 'Order {{payload.orderId}}' } }],
  });

  const prodSubscriberId = uid('keep-prod');
  await novu(h, h.prodKey).subscribers.create({ subscriberId: prodSubscriberId });

  Object.assign(state, { integration, identifier, subscriberId, topicKey, workflowId, prodSubscriberId });
}

async function verify(sdk) {
  const list = await sdk.integrations.list();
  const integ = list.result.find((i) => i.id === state.integration.id);
  assert.ok(integ, 'integration survived');
  assert.equal(integ.identifier, state.identifier);
  assert.equal(integ.name, 'Kept hook');
  assert.equal(integ.active, true);
  assert.equal(integ.providerId, 'push-webhook');
  assert.ok(!JSON.stringify(list.result).includes(SECRET), 'secret still not returned in clear');

  const sub = (await sdk.subscribers.retrieve(state.subscriberId)).result;
  assert.equal(sub.firstName, 'Kept');
  assert.equal(sub.email, 'kept@example.com');
  assert.deepEqual(sub.data, { n: 1 });
  const ch = (sub.channels ?? []).filter((c) => c.providerId === 'push-webhook');
  assert.equal(ch.length, 1, JSON.stringify(sub.channels));
  assert.equal(ch[0].integrationId, state.integration.id);
  assert.deepEqual(ch[0].credentials.deviceTokens, ['t1', 't2']);

  const devices = await raw(h, 'GET', `/v1/subscribers/${state.subscriberId}/devices`);
  assert.equal(devices.status, 200, devices.text);
  assert.deepEqual(devices.json.data.map((d) => d.token).sort(), ['t1', 't2']);

  const topic = (await sdk.topics.get(state.topicKey)).result;
  assert.equal(topic.name, 'Kept topic');
  const subs = (await sdk.topics.subscriptions.list({ topicKey: state.topicKey })).result;
  assert.deepEqual(subs.data.map((s) => s.subscriber.subscriberId), [state.subscriberId]);

  const wfs = (await sdk.workflows.list({ limit: 100 })).result;
  const wf = wfs.workflows.find((w) => w.workflowId === state.workflowId);
  assert.ok(wf, 'workflow survived');
  assert.equal(wf.name, 'Kept workflow');
  assert.equal(wf.status, 'ACTIVE');
  const full = (await sdk.workflows.get(state.workflowId)).result;
  assert.equal(full.steps[0].controls.values.body, 'Order {{payload.orderId}}');

  const prodSub = await novu(h, h.prodKey).subscribers.retrieve(state.prodSubscriberId);
  assert.equal(prodSub.result.subscriberId, state.prodSubscriberId, 'prod environment data survived');
}

test('data survives SIGTERM and restart', T, async () => {
  let sdk = h ? novu(h) : await start();
  await seed(sdk);
  await verify(sdk);

  const exit = await h.stop();
  h = undefined;
  assert.equal(exit.forced, false, 'Herald exited on SIGTERM within 5 s');
  assert.equal(exit.code, 0, `clean exit code on SIGTERM (got code ${exit.code}, signal ${exit.signal})`);

  sdk = await start();
  await verify(sdk);
});

test('committed data survives kill -9', T, async () => {
  let sdk = h ? novu(h) : await start();

  // Written and acknowledged just before the crash.
  const crashSub = uid('crash-sub');
  await sdk.subscribers.create({ subscriberId: crashSub, lastName: 'Crash' });
  await sdk.subscribers.credentials.update({
    providerId: 'push-webhook', integrationIdentifier: state.identifier, credentials: { deviceTokens: ['c1'] },
  }, crashSub);
  const crashTopic = uid('crash-topic');
  await sdk.topics.create({ key: crashTopic });
  await sdk.subscribers.patch({ firstName: 'Patched' }, state.subscriberId);

  const exit = await h.kill();
  h = undefined;
  assert.equal(exit.signal, 'SIGKILL');

  sdk = await start();
  const got = (await sdk.subscribers.retrieve(crashSub)).result;
  assert.equal(got.lastName, 'Crash');
  const ch = (got.channels ?? []).filter((c) => c.providerId === 'push-webhook');
  assert.deepEqual(ch.map((c) => c.credentials.deviceTokens), [['c1']]);
  assert.equal((await sdk.topics.get(crashTopic)).result.key, crashTopic);
  assert.equal((await sdk.subscribers.retrieve(state.subscriberId)).result.firstName, 'Patched');

  // Everything from before is still there, too.
  const sub = (await sdk.subscribers.retrieve(state.subscriberId)).result;
  assert.deepEqual(sub.channels.filter((c) => c.providerId === 'push-webhook')[0].credentials.deviceTokens, ['t1', 't2']);
  const integ = (await sdk.integrations.list()).result.find((i) => i.id === state.integration.id);
  assert.ok(integ, 'integration survived the crash');

  // The restarted server accepts writes again.
  const newSub = uid('post-crash');
  assert.equal((await sdk.subscribers.create({ subscriberId: newSub })).result.subscriberId, newSub);
});
