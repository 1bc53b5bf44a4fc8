// Delivery through push-webhook to a loopback receiver, driven by @novu/api:
// trigger, bulk, broadcast, topics (exclude, actor), JIT subscribers, duplicate
// transactionId, Idempotency-Key, overrides, cancel, messages and the activity
// feed; plus bad input for every new route.
//
// One receiver serves the whole file; tokens are unique per test, so every
// assertion counts the requests for its own tokens. A per-token script decides
// how the receiver answers (default 200 {"id": "rcv-<n>"}).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertErrorBody, expectSdkError, novu, raw, startHerald, uid,
} from './harness.mjs';
import { sleep, startReceiver, waitFor } from './receiver.mjs';
import {
  FAST_RETRY_ENV, PW, createHookIntegration, createPushWorkflow, createSubscriber,
  devices, isDate, rawMessages, waitForMessages,
} from './push_fixtures.mjs';

const T = { timeout: 30_000 };
const SECRET = 'hook-s3cret';
const PAUSE_MS = 700; // how long "no further request" is watched for

let h;
let sdk;
let rx;
let integ; // dev-environment push-webhook integration -> rx
let wf; // active workflow with one push step
let inactiveWf;
const scripts = new Map(); // token -> (req, n) => receiver action

before(async () => {
  rx = await startReceiver({ secret: SECRET, behave: (req, n) => scripts.get(req.token)?.(req, n) });
  h = await startHerald({ env: { ...FAST_RETRY_ENV, HERALD_RETRY_ATTEMPTS: '10' } });
  sdk = novu(h);
  integ = await createHookIntegration(sdk, rx.url, SECRET);
  wf = await createPushWorkflow(sdk);
  inactiveWf = await createPushWorkflow(sdk, { active: false });
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  if (rx) await rx.close();
});

const tok = () => uid('tok');

function sub(tokens = [], firstName = 'Ann') {
  return createSubscriber(sdk, { tokens, firstName, integration: integ });
}

function trigger(to, payload = {}, extra = {}, idempotencyKey = undefined) {
  return sdk.trigger({ workflowId: wf.workflowId, to, payload, ...extra }, idempotencyKey);
}

function assertProcessed(result, what = 'trigger') {
  assert.equal(result.acknowledged, true, `${what}: acknowledged`);
  assert.equal(result.status, 'processed', `${what}: ${JSON.stringify(result)}`);
  assert.equal(typeof result.transactionId, 'string', `${what}: transactionId`);
  assert.ok(result.transactionId.length > 0);
  return result.transactionId;
}

/** Waits PAUSE_MS and checks the request counts of `tokens` equal `expected` ({token: n}). */
async function assertCountsStay(expected, pause = PAUSE_MS) {
  await sleep(pause);
  const got = Object.fromEntries(Object.keys(expected).map((t) => [t, rx.count(t)]));
  assert.deepEqual(got, expected, 'request count per token');
}

function assertTriggerError(res, status = 400) {
  const json = assertErrorBody(res, status);
  assert.equal(typeof json.type, 'string', `400 on trigger routes carries type: ${res.text}`);
  assert.ok(Array.isArray(json.errors), `400 on trigger routes carries errors: []: ${res.text}`);
  return json;
}

function pushTokens(subscriber) {
  return (subscriber.channels ?? []).filter((c) => c.providerId === PW)
    .flatMap((c) => c.credentials?.deviceTokens ?? []);
}

// ---------------------------------------------------------------- the main path

test('trigger: one signed POST per device token, rendered and shaped like Novu', T, async () => {
  const [t1, t2] = [tok(), tok()];
  const subscriberId = await sub([t1, t2], 'Ann');

  const res = await trigger(subscriberId, { orderId: 7 });
  const tx = assertProcessed(res.result);

  await rx.waitForTokens([t1, t2]);
  await assertCountsStay({ [t1]: 1, [t2]: 1 });

  const reqs = [t1, t2].map((t) => rx.forToken(t)[0]);
  for (const [i, r] of reqs.entries()) {
    const token = [t1, t2][i];
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/hook');
    assert.match(r.headers['content-type'] ?? '', /^application\/json/i);
    assert.match(r.signature ?? '', /^[0-9a-f]{64}$/, `X-Novu-Signature is lowercase hex: ${r.signature}`);
    assert.ok(r.sigOk, 'X-Novu-Signature is the HMAC-SHA256 of the raw body with the secretKey');
    assert.ok(r.json, `body is JSON: ${r.text.slice(0, 500)}`);
    assert.equal(r.text, JSON.stringify(r.json), 'body is compact JSON, byte-identical to JSON.stringify (as Novu sends it)');

    const b = r.json;
    assert.deepEqual(Object.keys(b), ['target', 'title', 'content', 'overrides', 'payload', 'messageId'], 'key order of Novu\'s body');
    assert.deepEqual(b.target, [token]);
    assert.equal(b.title, 'Hi Ann');
    assert.equal(b.content, 'Order 7');
    assert.deepEqual(b.overrides, {});
    assert.deepEqual(Object.keys(b.payload), ['orderId', 'subscriber', 'step']);
    assert.equal(b.payload.orderId, 7);
    assert.equal(b.payload.subscriber.subscriberId, subscriberId);
    assert.equal(b.payload.subscriber.firstName, 'Ann');
    assert.deepEqual(b.payload.step, { digest: false });
    assert.equal(typeof b.messageId, 'string');
    assert.ok(b.messageId.length > 0);
  }
  assert.notEqual(reqs[0].json.messageId, reqs[1].json.messageId, 'one message per token');

  // Messages through the SDK (schema-checked), then Herald's extra fields raw.
  let page;
  await waitFor(async () => {
    page = (await sdk.messages.retrieve({ transactionId: [tx], channel: 'push' })).result;
    return page.data.length === 2 && page.data.every((m) => m.status === 'sent');
  }, 10_000, { describe: () => JSON.stringify(page?.data?.map((m) => [m.deviceTokens, m.status])) });
  assert.equal(page.page, 0);
  assert.equal(page.hasMore, false);
  if (page.totalCount !== undefined) assert.equal(page.totalCount, 2);
  const byToken = new Map(page.data.map((m) => [m.deviceTokens?.[0], m]));
  assert.deepEqual([...byToken.keys()].sort(), [t1, t2].sort());
  for (const [i, token] of [t1, t2].entries()) {
    const m = byToken.get(token);
    assert.deepEqual(m.deviceTokens, [token]);
    assert.equal(m.id, reqs[i].json.messageId, 'messageId in the webhook body is the message _id');
    assert.equal(m.transactionId, tx);
    assert.equal(m.channel, 'push');
    assert.equal(m.providerId, PW);
    assert.equal(m.title, 'Hi Ann');
    assert.equal(m.content, 'Order 7');
    assert.equal(m.templateIdentifier, wf.workflowId);
    assert.equal(m.read, false);
    assert.equal(m.seen, false);
    assert.ok(isDate(m.createdAt));
  }

  const rawPage = await rawMessages(h, { transactionId: tx });
  for (const k of ['data', 'hasMore', 'page', 'pageSize', 'totalCount']) {
    assert.ok(k in rawPage, `messages page is returned bare with ${k}: ${JSON.stringify(Object.keys(rawPage))}`);
  }
  assert.equal(rawPage.totalCount, 2);
  for (const m of rawPage.data) {
    const token = m.deviceTokens[0];
    const req = rx.forToken(token)[0];
    for (const k of ['_id', '_environmentId', '_organizationId', '_notificationId', '_subscriberId', '_templateId']) {
      assert.equal(typeof m[k], 'string', `${k} is a string`);
    }
    assert.equal(m.subscriberId, subscriberId, 'Herald adds the app\'s subscriberId');
    assert.equal(m.status, 'sent');
    assert.equal(m.deliveryStatus, 'delivered');
    assert.equal(m.attempts, 1);
    assert.ok(isDate(m.lastAttemptAt), `lastAttemptAt: ${m.lastAttemptAt}`);
    assert.equal(m.providerResponseId, JSON.parse(req.outcome.body).id, 'providerResponseId = response body id');
    assert.deepEqual(m.cta, {});
    assert.equal(m.payload?.orderId, 7);
    assert.equal(typeof m.overrides, 'object');
  }

  const devs = (await devices(h, subscriberId)).filter((d) => d.providerId === PW);
  assert.deepEqual(devs.map((d) => d.token).sort(), [t1, t2].sort());
  for (const d of devs) assert.ok(isDate(d.lastActiveAt), `lastActiveAt set after delivery: ${JSON.stringify(d)}`);
});

test('the push payload keeps the trigger\'s member order and JavaScript\'s number forms (trigger, bulk, topic)', T, async () => {
  const [t1, t2, t3] = [tok(), tok(), tok()];
  const [s1, s2, s3] = [await sub([t1], 'Ord'), await sub([t2], 'Ord'), await sub([t3], 'Ord')];
  const topicKey = uid('order-topic');
  await sdk.topics.create({ key: topicKey, name: 'Orders' });
  await sdk.topics.subscriptions.create({ subscriberIds: [s3] }, topicKey);
  // Written by hand: not alphabetical, numbers JSON.stringify prints differently, keys that are
  // array indices (JavaScript puts them first), and a key Novu's payload sets itself.
  const payloadText = '{"zeta":1,"step":"mine","alpha":2.50,"10":"x","9":"y",' +
    '"mid":{"b":1.0,"a":[1e21,1e-7,-0.0,12345678901234567890]},"orderId":7}';
  const parsed = JSON.parse(payloadText);
  const name = JSON.stringify(wf.workflowId);
  const sent = [
    await raw(h, 'POST', '/v1/events/trigger', { body: `{"name":${name},"to":"${s1}","payload":${payloadText}}` }),
    await raw(h, 'POST', '/v1/events/trigger/bulk', { body: `{"events":[{"payload":${payloadText},"to":"${s2}","name":${name}}]}` }),
    await raw(h, 'POST', '/v1/events/trigger', { body: `{"name":${name},"to":[{"type":"Topic","topicKey":"${topicKey}"}],"payload":${payloadText}}` }),
  ];
  for (const res of sent) assert.equal(res.status, 201, res.text);
  await rx.waitForTokens([t1, t2, t3]);
  for (const token of [t1, t2, t3]) {
    const [r] = rx.forToken(token);
    assert.ok(r.sigOk, 'signed over the raw body');
    assert.equal(r.text, JSON.stringify(r.json), `${token}: byte-identical to JSON.stringify`);
    // What Novu's worker prints: {...payload, subscriber, step}, by Node itself.
    const asNovu = JSON.stringify({ ...parsed, subscriber: r.json.payload.subscriber, step: r.json.payload.step });
    assert.ok(r.text.includes(`"payload":${asNovu},"messageId"`),
      `${token}: payload as Novu prints it:\n${r.text}\nexpected:\n${asNovu}`);
    assert.deepEqual(r.json.payload.step, { digest: false });
    assert.equal(r.json.content, 'Order 7');
  }
});

test('activity feed: notifications.list by transactionId and subscriberIds', T, async () => {
  const t = tok();
  const subscriberId = await sub([t], 'Feed');
  const tx = assertProcessed((await trigger(subscriberId, { orderId: 12 })).result);
  await waitForMessages(h, tx, { count: 1 });

  const list = (await sdk.notifications.list({ transactionId: tx })).result; // SDK schema-checks jobs etc.
  assert.equal(list.page, 0);
  assert.equal(typeof list.pageSize, 'number');
  assert.equal(list.hasMore, false);
  assert.equal(list.data.length, 1, JSON.stringify(list.data));
  const n = list.data[0];
  assert.equal(n.transactionId, tx);
  assert.equal(typeof n.id, 'string');
  assert.equal(typeof n.environmentId, 'string');
  assert.equal(typeof n.organizationId, 'string');
  assert.equal(typeof n.subscriberId, 'string');
  assert.ok(isDate(n.createdAt));
  assert.deepEqual(n.channels, ['push']);
  assert.equal(n.subscriber?.subscriberId, subscriberId);
  assert.equal(n.template?.name, `Workflow ${wf.workflowId}`);
  assert.ok(Array.isArray(n.template.triggers));
  assert.equal(n.payload?.orderId, 12);
  assert.ok(Array.isArray(n.jobs) && n.jobs.length >= 1, `jobs: ${JSON.stringify(n.jobs)}`);
  const pushJobs = n.jobs.filter((j) => j.type === 'push');
  assert.equal(pushJobs.length, 1);
  assert.equal(pushJobs[0].providerId, PW);
  assert.equal(typeof pushJobs[0].status, 'string');
  assert.ok(Array.isArray(pushJobs[0].executionDetails));

  const bySub = (await sdk.notifications.list({ subscriberIds: [subscriberId] })).result;
  assert.deepEqual(bySub.data.map((x) => x.transactionId), [tx]);

  // Every other filter the SDK sends narrows the list: one that matches keeps the notification,
  // one that does not leaves nothing.
  const day = 24 * 3600 * 1000;
  const feed = async (filters) =>
    (await sdk.notifications.list({ transactionId: tx, ...filters })).result.data.map((x) => x.transactionId);
  for (const [filters, expected] of [
    [{ channels: ['push'] }, [tx]], [{ channels: ['email', 'sms'] }, []],
    [{ templates: [wf.id] }, [tx]], [{ templates: [inactiveWf.id] }, []],
    [{ severity: ['none'] }, [tx]], [{ severity: ['high'] }, []],
    [{ after: new Date(Date.now() - day).toISOString(), before: new Date(Date.now() + day).toISOString() }, [tx]],
    [{ after: new Date(Date.now() + day).toISOString() }, []],
    [{ before: '2000-01-01' }, []],
    [{ topicKey: uid('topic') }, []], [{ contextKeys: ['tenant:acme'] }, []],
    [{ search: subscriberId }, [tx]], [{ search: uid('nobody') }, []],
  ]) {
    assert.deepEqual(await feed(filters), expected, JSON.stringify(filters));
  }
  assert.equal(n.severity, 'none');

  const r = await raw(h, 'GET', `/v1/notifications?transactionId=${encodeURIComponent(tx)}&page=0&limit=10`);
  assert.equal(r.status, 200, r.text);
  for (const k of ['data', 'hasMore', 'page', 'pageSize']) assert.ok(k in r.json, `${k} in ${r.text.slice(0, 300)}`);
  assert.equal(r.json.data[0]._subscriberId, n.subscriberId);
});

test('messages: filters, paging and delete', T, async () => {
  const tokens = [tok(), tok(), tok()];
  const subscriberId = await sub(tokens);
  const tx1 = assertProcessed((await trigger(subscriberId, { orderId: 1 })).result);
  const tx2 = assertProcessed((await trigger(subscriberId, { orderId: 2 })).result);
  await waitForMessages(h, tx1, { count: 3 });
  await waitForMessages(h, tx2, { count: 3 });

  const one = (await sdk.messages.retrieve({ transactionId: [tx1] })).result;
  assert.equal(one.data.length, 3);
  assert.ok(one.data.every((m) => m.transactionId === tx1));
  const both = (await sdk.messages.retrieve({ transactionId: [tx1, tx2] })).result;
  assert.equal(both.data.length, 6, 'transactionId may repeat');
  const bySub = (await sdk.messages.retrieve({ subscriberId, channel: 'push' })).result;
  assert.equal(bySub.data.length, 6, 'filter by the app\'s subscriberId');

  const p0 = (await sdk.messages.retrieve({ subscriberId, page: 0, limit: 4 })).result;
  assert.equal(p0.data.length, 4);
  assert.equal(p0.pageSize, 4);
  assert.equal(p0.page, 0);
  assert.equal(p0.hasMore, true);
  if (p0.totalCount !== undefined) assert.equal(p0.totalCount, 6);
  const p1 = (await sdk.messages.retrieve({ subscriberId, page: 1, limit: 4 })).result;
  assert.equal(p1.data.length, 2);
  assert.equal(p1.page, 1);
  assert.equal(p1.hasMore, false);
  const ids = [...p0.data, ...p1.data].map((m) => m.id);
  assert.equal(new Set(ids).size, 6, 'pages do not overlap');

  const victim = ids[0];
  const del = await sdk.messages.delete(victim);
  assert.deepEqual(del.result, { acknowledged: true, status: 'deleted' });
  const afterDel = (await sdk.messages.retrieve({ subscriberId, limit: 10 })).result;
  assert.equal(afterDel.data.length, 5);
  assert.ok(!afterDel.data.some((m) => m.id === victim));
  await expectSdkError(sdk.messages.delete(victim), { cls: 'ErrorDto', status: 404 });
});

// ---------------------------------------------------------------- fan-out forms

test('bulk: per-event results, an unknown workflow is an error item', T, async () => {
  const [a, b] = [tok(), tok()];
  const sa = await sub([a]);
  const sb = await sub([b]);
  const res = await sdk.triggerBulk({
    events: [
      { workflowId: wf.workflowId, to: sa, payload: { orderId: 1 } },
      { workflowId: uid('no-such-workflow'), to: sa, payload: { orderId: 2 } },
      { workflowId: wf.workflowId, to: sb, payload: { orderId: 3 } },
    ],
  });
  const items = res.result;
  assert.ok(Array.isArray(items), JSON.stringify(items));
  assert.equal(items.length, 3);
  const tx0 = assertProcessed(items[0], 'bulk[0]');
  const tx2 = assertProcessed(items[2], 'bulk[2]');
  assert.notEqual(tx0, tx2);
  assert.equal(items[1].acknowledged, true);
  assert.equal(items[1].status, 'error');
  assert.ok(Array.isArray(items[1].error) && items[1].error.length > 0, JSON.stringify(items[1]));
  assert.match(items[1].error.join(' '), /workflow_not_found|not found/i);

  await rx.waitForTokens([a, b]);
  await assertCountsStay({ [a]: 1, [b]: 1 });
  assert.equal(rx.forToken(a)[0].json.content, 'Order 1');
  assert.equal(rx.forToken(b)[0].json.content, 'Order 3');
});

test('broadcast: every subscriber of the environment with tokens gets it', T, async () => {
  // In the production environment, so that only these subscribers exist there.
  const prod = novu(h, h.prodKey);
  const pInteg = await createHookIntegration(prod, rx.url, SECRET);
  const pWf = await createPushWorkflow(prod);
  const [x1, x2, x3] = [tok(), tok(), tok()];
  const p1 = await createSubscriber(prod, { firstName: 'P1', tokens: [x1], integration: pInteg });
  const p2 = await createSubscriber(prod, { firstName: 'P2', tokens: [x2, x3], integration: pInteg });
  const p3 = await createSubscriber(prod, { firstName: 'P3' }); // no tokens

  const res = await prod.triggerBroadcast({ name: pWf.workflowId, payload: { orderId: 42 } });
  const tx = assertProcessed(res.result, 'broadcast');

  await rx.waitForTokens([x1, x2, x3]);
  await assertCountsStay({ [x1]: 1, [x2]: 1, [x3]: 1 });
  assert.equal(rx.forToken(x1)[0].json.title, 'Hi P1');
  assert.equal(rx.forToken(x2)[0].json.title, 'Hi P2');
  assert.equal(rx.forToken(x3)[0].json.payload.subscriber.subscriberId, p2);
  assert.equal(rx.forToken(x1)[0].json.content, 'Order 42');

  const msgs = await waitForMessages(h, tx, { count: 3, key: h.prodKey });
  assert.ok(msgs.every((m) => m.status === 'sent'));
  assert.ok(!msgs.some((m) => m.subscriberId === p3));
  assert.deepEqual([...new Set(msgs.map((m) => m.subscriberId))].sort(), [p1, p2].sort());
  // Nothing from the production broadcast leaked into development.
  assert.equal((await rawMessages(h, { transactionId: tx })).data.length, 0);
});

test('topic: exclude and actor are left out of the fan-out', T, async () => {
  const [ta, tb, tc] = [tok(), tok(), tok()];
  const A = await sub([ta], 'A');
  const B = await sub([tb], 'B');
  const C = await sub([tc], 'C');
  const topicKey = uid('topic');
  await sdk.topics.create({ key: topicKey, name: 'Orders' });
  await sdk.topics.subscriptions.create({ subscriberIds: [A, B, C] }, topicKey);

  const r1 = await trigger({ type: 'Topic', topicKey, exclude: [A] }, { orderId: 5 }, { actor: B });
  assertProcessed(r1.result);
  await rx.waitForToken(tc);
  await assertCountsStay({ [ta]: 0, [tb]: 0, [tc]: 1 });
  assert.equal(rx.forToken(tc)[0].json.title, 'Hi C');

  // Without exclude and actor, the whole topic.
  const r2 = await trigger([{ type: 'Topic', topicKey }], { orderId: 6 });
  assertProcessed(r2.result);
  await waitFor(() => rx.count(ta) === 1 && rx.count(tb) === 1 && rx.count(tc) === 2, 8_000,
    { describe: () => `counts ${rx.count(ta)} ${rx.count(tb)} ${rx.count(tc)}` });
  await assertCountsStay({ [ta]: 1, [tb]: 1, [tc]: 2 });
  // The activity feed knows which notifications came through the topic.
  const byTopic = (await sdk.notifications.list({ topicKey, limit: 20 })).result.data;
  assert.deepEqual(byTopic.map((x) => x.subscriber?.subscriberId).sort(), [A, B, C, C].sort());
  for (const x of byTopic) assert.deepEqual(x.topics?.map((t) => t.topicKey), [topicKey]);

  // As in Novu, a topic's exclude holds for the whole fan-out: A, excluded from the first topic,
  // gets nothing through the second one either.
  const other = uid('topic');
  await sdk.topics.subscriptions.create({ subscriberIds: [A, C] }, other);
  const r3 = await trigger([{ type: 'Topic', topicKey, exclude: [A] }, { type: 'Topic', topicKey: other }], { orderId: 7 });
  assertProcessed(r3.result);
  await waitFor(() => rx.count(tb) === 2 && rx.count(tc) === 3, 8_000,
    { describe: () => `counts ${rx.count(ta)} ${rx.count(tb)} ${rx.count(tc)}` });
  await assertCountsStay({ [ta]: 1, [tb]: 2, [tc]: 3 });

  // An unknown topic is accepted like Novu's API does, and its worker only logs it: the
  // subscriber named on its own still gets the trigger, nothing else is sent.
  const r4 = await trigger([{ type: 'Topic', topicKey: uid('no-such-topic') }, A], { orderId: 8 });
  assertProcessed(r4.result);
  await rx.waitForToken(ta, 2);
  await assertCountsStay({ [ta]: 2, [tb]: 2, [tc]: 3 });
  assert.equal((await rawMessages(h, { transactionId: r4.result.transactionId })).data.length, 1);
});

test('array recipients are deduplicated by subscriberId, the last one wins', T, async () => {
  const [t1, t2] = [tok(), tok()];
  const s1 = await sub([t1], 'First');
  const s2 = await sub([t2], 'Other');
  const res = await trigger([s1, { subscriberId: s1, firstName: 'Last' }, s2], { orderId: 3 });
  assertProcessed(res.result);
  await rx.waitForTokens([t1, t2]);
  await assertCountsStay({ [t1]: 1, [t2]: 1 });
  assert.equal(rx.forToken(t1)[0].json.title, 'Hi Last', 'the subscriber object was upserted before rendering');
  assert.equal((await sdk.subscribers.retrieve(s1)).result.firstName, 'Last');
});

test('JIT subscriber: created with its channels, tokens appended on later triggers', T, async () => {
  const subscriberId = uid('jit');
  const [jt, jt2] = [tok(), tok()];
  const r1 = await trigger({
    subscriberId,
    firstName: 'Jo',
    channels: [{ providerId: PW, credentials: { deviceTokens: [jt] } }],
  }, { orderId: 1 });
  assertProcessed(r1.result);
  const [req] = await rx.waitForToken(jt);
  assert.ok(req.sigOk);
  assert.equal(req.json.title, 'Hi Jo');
  assert.equal(req.json.payload.subscriber.subscriberId, subscriberId);

  const got = (await sdk.subscribers.retrieve(subscriberId)).result;
  assert.equal(got.firstName, 'Jo');
  assert.deepEqual(pushTokens(got), [jt]);

  const r2 = await trigger({
    subscriberId,
    channels: [{ providerId: PW, credentials: { deviceTokens: [jt2] } }],
  }, { orderId: 2 });
  assertProcessed(r2.result);
  await rx.waitForToken(jt, 2);
  await rx.waitForToken(jt2, 1);
  await assertCountsStay({ [jt]: 2, [jt2]: 1 });
  const got2 = (await sdk.subscribers.retrieve(subscriberId)).result;
  assert.deepEqual(pushTokens(got2), [jt, jt2], 'JIT channels are PATCHed (appended), not replaced');
  assert.equal(got2.firstName, 'Jo', 'fields left out are kept');
});

// ---------------------------------------------------------------- exactly-once-ish

test('a repeated transactionId is answered with the same id and not delivered twice', T, async () => {
  const t = tok();
  const subscriberId = await sub([t]);
  const transactionId = uid('dup-tx');
  const r1 = await trigger(subscriberId, { orderId: 1 }, { transactionId });
  const r2 = await trigger(subscriberId, { orderId: 1 }, { transactionId });
  assert.equal(assertProcessed(r1.result), transactionId);
  assert.equal(assertProcessed(r2.result), transactionId);
  await rx.waitForToken(t);
  await assertCountsStay({ [t]: 1 }, 1_000);
  const msgs = await waitForMessages(h, transactionId, { count: 1 });
  assert.equal(msgs[0].status, 'sent');

  // Also when the repeat comes through bulk.
  const bulk = await sdk.triggerBulk({ events: [{ workflowId: wf.workflowId, to: subscriberId, payload: {}, transactionId }] });
  assert.equal(bulk.result[0].transactionId, transactionId);
  await assertCountsStay({ [t]: 1 });
});

test('Idempotency-Key: replay, in-progress conflict, different body', T, async () => {
  const t = tok();
  const subscriberId = await sub([t]);
  const key = uid('idem');
  const dto = { workflowId: wf.workflowId, to: subscriberId, payload: { orderId: 1 } };

  const r1 = await sdk.trigger(dto, key);
  const tx = assertProcessed(r1.result);
  assert.equal(r1.headers['idempotency-replay'], undefined, 'first answer is not a replay');
  const r2 = await sdk.trigger(dto, key);
  assert.deepEqual(r2.result, r1.result, 'same body replayed');
  assert.deepEqual(r2.headers['idempotency-replay'], ['true']);
  await rx.waitForToken(t);
  await assertCountsStay({ [t]: 1 });
  assert.equal((await rawMessages(h, { transactionId: tx })).data.length, 1);

  // Same key, different body: 422.
  const res = await raw(h, 'POST', '/v1/events/trigger', {
    headers: { 'idempotency-key': key },
    body: { name: wf.workflowId, to: subscriberId, payload: { orderId: 2 } },
  });
  const json = assertErrorBody(res, 422);
  assert.equal(typeof json.errors, 'object', `422 carries errors: ${res.text}`);
  await assertCountsStay({ [t]: 1 });

  // The body is compared as JSON, as Novu compares JSON.stringify(body): other spacing is the
  // same body (a replay), other member order is not (422).
  const spacingKey = uid('idem');
  const send = (body) => raw(h, 'POST', '/v1/events/trigger', { headers: { 'idempotency-key': spacingKey }, body });
  const compact = await send({ name: wf.workflowId, to: subscriberId, payload: { orderId: 4 } });
  const spacingTx = assertProcessed(compact.json.data);
  const spaced = await send(`{ "name" : ${JSON.stringify(wf.workflowId)},\n  "to": ${JSON.stringify(subscriberId)}, "payload": { "orderId": 4 } }`);
  assert.equal(spaced.status, 201, spaced.text);
  assert.equal(spaced.headers.get('idempotency-replay'), 'true');
  assert.equal(spaced.json.data.transactionId, spacingTx);
  assertErrorBody(await send({ to: subscriberId, name: wf.workflowId, payload: { orderId: 4 } }), 422);
  await rx.waitForToken(t, 2);
  await assertCountsStay({ [t]: 2 });

  // Two concurrent requests with one fresh key: one 201; the other is a 409
  // (Retry-After: 1) while the first is in progress, or a replay.
  const t2 = tok();
  const s2 = await sub([t2]);
  const key2 = uid('idem');
  const body = { name: wf.workflowId, to: s2, payload: { orderId: 3 } };
  const both = await Promise.all([0, 1].map(() => raw(h, 'POST', '/v1/events/trigger', {
    headers: { 'idempotency-key': key2 }, body,
  })));
  for (const r of both) {
    assert.ok([201, 409].includes(r.status), `${r.status} ${r.text}`);
    if (r.status === 409) assert.equal(r.headers.get('retry-after'), '1');
  }
  const ok = both.filter((r) => r.status === 201);
  assert.ok(ok.length >= 1);
  assert.equal(new Set(ok.map((r) => r.json.data.transactionId)).size, 1, 'one transaction');
  await rx.waitForToken(t2);
  await assertCountsStay({ [t2]: 1 });

  // A key over 255 characters is refused.
  const long = await raw(h, 'POST', '/v1/events/trigger', {
    headers: { 'idempotency-key': 'k'.repeat(256) }, body,
  });
  assertErrorBody(long, 400);
});

// ---------------------------------------------------------------- workflow state and overrides

test('unknown workflow: 422 workflow_not_found (ValidationErrorDto)', T, async () => {
  const subscriberId = await sub([]);
  const err = await expectSdkError(sdk.trigger({ workflowId: uid('nope'), to: subscriberId, payload: {} }),
    { cls: 'ValidationErrorDto', status: 422, includes: 'workflow_not_found' });
  assert.deepEqual(err.errors, {});
  const res = await raw(h, 'POST', '/v1/events/trigger', { body: { name: uid('nope'), to: subscriberId } });
  const json = assertErrorBody(res, 422);
  assert.equal(json.message, 'workflow_not_found');
  assert.deepEqual(json.errors, {});
});

test('inactive workflow: 201 trigger_not_active and nothing is sent', T, async () => {
  const t = tok();
  const subscriberId = await sub([t]);
  const res = await sdk.trigger({ workflowId: inactiveWf.workflowId, to: subscriberId, payload: { orderId: 1 } });
  assert.equal(res.result.acknowledged, true);
  assert.equal(res.result.status, 'trigger_not_active');
  await assertCountsStay({ [t]: 0 });
});

test('overrides: deviceTokens replace the subscriber\'s tokens; step beats global; top-level provider key', T, async () => {
  const [a, b] = [tok(), tok()];
  const subscriberId = await sub([a, b]);

  const ov = tok();
  const r1 = await trigger(subscriberId, { orderId: 4 }, { overrides: { providers: { [PW]: { deviceTokens: [ov] } } } });
  const tx1 = assertProcessed(r1.result);
  await rx.waitForToken(ov);
  await assertCountsStay({ [a]: 0, [b]: 0, [ov]: 1 });
  assert.ok(rx.forToken(ov)[0].sigOk);
  const m1 = await waitForMessages(h, tx1, { count: 1 });
  assert.deepEqual(m1[0].deviceTokens, [ov]);

  const [g, st] = [tok(), tok()];
  const stepId = wf.steps[0].stepId;
  const r2 = await trigger(subscriberId, { orderId: 5 }, {
    overrides: {
      providers: { [PW]: { deviceTokens: [g] } },
      steps: { [stepId]: { providers: { [PW]: { deviceTokens: [st] } } } },
    },
  });
  assertProcessed(r2.result);
  await rx.waitForToken(st);
  await assertCountsStay({ [a]: 0, [b]: 0, [g]: 0, [st]: 1 });

  // @novu/node style (the @novu/api SDK drops top-level provider keys), raw.
  const top = tok();
  const r3 = await raw(h, 'POST', '/v1/events/trigger', {
    body: { name: wf.workflowId, to: subscriberId, payload: { orderId: 6 }, overrides: { [PW]: { deviceTokens: [top] } } },
  });
  assert.equal(r3.status, 201, r3.text);
  assert.equal(r3.json.data.status, 'processed');
  await rx.waitForToken(top);
  await assertCountsStay({ [a]: 0, [b]: 0, [top]: 1 });
});

// ---------------------------------------------------------------- cancel

test('cancel: stops retries of what is not yet sent', T, async () => {
  const [c1, c2] = [tok(), tok()];
  for (const t of [c1, c2]) {
    scripts.set(t, () => ({ status: 503, headers: { 'retry-after': '30' }, body: { message: 'busy' } }));
  }
  const subscriberId = await sub([c1, c2]);
  const tx = assertProcessed((await trigger(subscriberId, { orderId: 11 })).result);
  await rx.waitForTokens([c1, c2]);
  const pending = await waitForMessages(h, tx, {
    count: 2, until: (ms) => ms.every((m) => m.status === 'warning' && m.attempts >= 1),
  });
  for (const m of pending) assert.ok(['pending', 'retrying'].includes(m.deliveryStatus), JSON.stringify(m));

  const c = await sdk.cancel(tx);
  assert.equal(c.result, true);
  await sleep(150); // a send already on the wire may still land
  const snapshot = { [c1]: rx.count(c1), [c2]: rx.count(c2) };
  await assertCountsStay(snapshot, 1_000);

  const cancelled = await waitForMessages(h, tx, {
    count: 2, until: (ms) => ms.every((m) => m.deliveryStatus === 'cancelled'), timeoutMs: 3_000,
  });
  assert.ok(cancelled.every((m) => m.status !== 'sent'));
  await sdk.messages.retrieve({ transactionId: [tx] }); // still valid for the SDK

  assert.equal((await sdk.cancel(tx)).result, false, 'nothing left to cancel');
  assert.equal((await sdk.cancel(uid('unknown-tx'))).result, false, 'unknown transactionId');

  // A transaction that was delivered already has nothing to cancel.
  const t = tok();
  const s2 = await sub([t]);
  const tx2 = assertProcessed((await trigger(s2, { orderId: 12 })).result);
  await waitForMessages(h, tx2, { count: 1 });
  assert.equal((await sdk.cancel(tx2)).result, false);
});

// A cancel takes back sends still waiting for a connection: with more tokens than the
// integration's 64 connections and a slow receiver, the 64 on the wire land, the rest never do.
test('cancel: sends waiting for a connection are taken back', T, async () => {
  const tokens = Array.from({ length: 80 }, () => tok());
  for (const t of tokens) scripts.set(t, () => ({ status: 200, delayMs: 800 })); // under the 1.5 s timeout
  const subscriberId = await sub(tokens);
  const tx = assertProcessed((await trigger(subscriberId, { orderId: 13 })).result);
  const arrived = () => tokens.filter((t) => rx.count(t) > 0).length;
  await waitFor(() => arrived() >= 64, 8_000, { describe: () => `${arrived()} of 64 on the wire` });
  assert.equal((await sdk.cancel(tx)).result, true);
  // The 64 on the wire answer after their delay and are recorded as sent; the rest stay cancelled.
  const messages = await waitForMessages(h, tx, {
    count: 80, limit: 100, timeoutMs: 10_000,
    until: (ms) => ms.filter((m) => m.status === 'sent').length === 64,
  });
  await assertCountsStay(Object.fromEntries(tokens.map((t) => [t, rx.count(t)])), 1_000);
  assert.equal(arrived(), 64, 'only the sends already on the wire landed');
  assert.equal(messages.filter((m) => m.status === 'sent').length, 64);
  assert.equal(messages.filter((m) => m.deliveryStatus === 'cancelled').length, 16);
});

// An integration's new credentials are used by the next send, not after a cache expires.
test('an updated integration is used at once', T, async () => {
  const rx2 = await startReceiver({ secret: 'first-secret-1' });
  const rx3 = await startReceiver({ secret: 'second-secret-2' });
  try {
    const moving = await createHookIntegration(sdk, rx2.url, 'first-secret-1');
    const t = tok();
    const subscriberId = await createSubscriber(sdk, { tokens: [t], integration: moving });
    assertProcessed((await trigger(subscriberId, { orderId: 14 })).result);
    await rx2.waitForToken(t);
    await sdk.integrations.update({ credentials: { webhookUrl: rx3.url, secretKey: 'second-secret-2' } }, moving.id);
    assertProcessed((await trigger(subscriberId, { orderId: 15 })).result);
    await rx3.waitForToken(t);
    assert.equal(rx2.count(t), 1);
    assert.equal(rx3.forToken(t)[0].json.payload.orderId, 15);
    assert.ok(rx3.forToken(t)[0].sigOk, 'signed with the new secret');
  } finally {
    await rx2.close();
    await rx3.close();
  }
});

// ---------------------------------------------------------------- bad input

test('bad input on the new routes', T, async () => {
  const subscriberId = await sub([]); // no tokens: nothing can be delivered by accident
  const name = wf.workflowId;
  const trig = (body) => raw(h, 'POST', '/v1/events/trigger', { body });

  for (const body of [
    { to: subscriberId, payload: {} }, // no name
    { name, payload: {} }, // no to
    { name: 5, to: subscriberId },
    { name, to: 5 },
    { name, to: true },
    { name, to: subscriberId, payload: 'x' },
    { name, to: subscriberId, payload: [1, 2] },
    { name, to: subscriberId, overrides: 'x' },
    { name, to: subscriberId, transactionId: 5 },
    ['not', 'an', 'object'],
  ]) {
    assertTriggerError(await trig(body));
  }
  assertErrorBody(await trig('{"name":'), 400);
  // Recipients, actor and tenant of the wrong shape, each with a message that names the field.
  const jit = (channel) => ({ name, to: { subscriberId: uid('jit'), channels: [channel] } });
  for (const [body, says] of [
    [{ name, to: [] }, 'at least one recipient'],
    [{ name, to: Array.from({ length: 101 }, (_, i) => `r${i}`) }, 'at most 100 recipients'],
    [{ name, to: { type: 'Topic' } }, 'to.topicKey is required'],
    [{ name, to: { type: 'Topic', topicKey: 'k', exclude: 'x' } }, 'to.exclude must be an array'],
    [{ name, to: { firstName: 'No id' } }, 'to.subscriberId'],
    [{ name, to: { subscriberId: uid('s'), channels: 'x' } }, 'to.channels must be an array'],
    [jit({ providerId: 'carrier-pigeon', credentials: { deviceTokens: ['a'] } }), 'not a supported push provider'],
    [jit({ providerId: PW, integrationIdentifier: uid('none'), credentials: { deviceTokens: ['a'] } }),
      'is not active or does not exist'],
    [{ name, to: subscriberId, actor: 5 }, 'actor must be'],
    [{ name, to: subscriberId, tenant: 5 }, 'tenant must be'],
  ]) {
    const res = await trig(body);
    assertTriggerError(res);
    assert.ok(res.json.message.includes(says), `${says}: ${res.json.message}`);
  }
  // Override device tokens are checked like a subscriber's, in all three places, per provider.
  for (const [overrides, where] of [
    [{ providers: { [PW]: { deviceTokens: [''] } } }, `overrides.providers.${PW}.deviceTokens[0]`],
    [{ [PW]: { deviceTokens: 'tok' } }, `overrides.${PW}.deviceTokens must be an array`],
    [{ [PW]: { deviceTokens: ['ok', 7] } }, `overrides.${PW}.deviceTokens must be an array`],
    [{ steps: { s1: { providers: { 'web-push': { deviceTokens: ['not a subscription'] } } } } },
      'overrides.steps.s1.providers.web-push.deviceTokens[0]'],
    [{ providers: { [PW]: { deviceTokens: Array.from({ length: 101 }, (_, i) => `ov-${i}`) } } },
      'the limit is 100'],
  ]) {
    const res = await trig({ name, to: subscriberId, overrides });
    assertTriggerError(res);
    assert.ok(res.json.message.includes(where), `${where}: ${res.json.message}`);
  }
  // A key that names no push provider is not Herald's to check.
  const foreign = await trig({ name, to: subscriberId, overrides: { email: { deviceTokens: 5 } } });
  assert.equal(foreign.status, 201, foreign.text);
  // Just-in-time tokens beyond a channel's limit (100) are refused before the 201, and nothing
  // of the trigger is kept.
  const crowded = uid('crowded');
  const many = Array.from({ length: 101 }, (_, i) => `tok-${crowded}-${i}`);
  const over = await trig({
    name, to: { subscriberId: crowded, channels: [{ providerId: PW, credentials: { deviceTokens: many } }] },
  });
  assertTriggerError(over);
  assert.match(over.json.message, /limit/i);
  await expectSdkError(sdk.subscribers.retrieve(crowded), { cls: 'ErrorDto', status: 404 });
  assertErrorBody(await raw(h, 'POST', '/v1/events/trigger', { body: { name, to: subscriberId }, key: null }), 401);

  const event = { name, to: subscriberId, payload: {} };
  const bulk = (body) => raw(h, 'POST', '/v1/events/trigger/bulk', { body });
  assertTriggerError(await bulk({ events: [] }));
  assertTriggerError(await bulk({ events: Array.from({ length: 101 }, () => event) }));
  assertTriggerError(await bulk({ events: 'x' }));
  assertTriggerError(await bulk({}));
  // A malformed item fails alone; the others are processed.
  const mixed = await bulk({ events: [event, 5, { name }] });
  assert.equal(mixed.status, 201, mixed.text);
  assert.deepEqual(mixed.json.data.map((d) => d.status), ['processed', 'error', 'error']);
  assert.match(mixed.json.data[1].error[0], /must be an object/);
  assert.match(mixed.json.data[2].error[0], /to is required/);
  const hundred = await bulk({ events: Array.from({ length: 100 }, () => event) });
  assert.equal(hundred.status, 201, `100 events are fine: ${hundred.text.slice(0, 300)}`);
  assert.equal(hundred.json.data.length, 100);

  // Broadcast bodies name the inactive workflow, so a wrongly accepted one sends nothing.
  const bc = (body) => raw(h, 'POST', '/v1/events/trigger/broadcast', { body });
  assertTriggerError(await bc({ name: inactiveWf.workflowId, payload: 'x' }));
  assertTriggerError(await bc({ name: inactiveWf.workflowId, payload: [1] }));
  assertTriggerError(await bc({ payload: {} }));
  assertTriggerError(await bc({ name: inactiveWf.workflowId, to: subscriberId }));
  assertTriggerError(await bc({ name: inactiveWf.workflowId })); // payload is required here
  assertTriggerError(await bc({ name: inactiveWf.workflowId, payload: null }));
  // An object that says it is a subscriber is one, topicKey or not: it needs a subscriberId.
  assertTriggerError(await raw(h, 'POST', '/v1/events/trigger', {
    body: { name: inactiveWf.workflowId, to: { type: 'Subscriber', topicKey: 'news' } } }));

  const cancel = await raw(h, 'DELETE', `/v1/events/trigger/${uid('never')}`);
  assert.equal(cancel.status, 200, cancel.text);
  assert.deepEqual(cancel.json, { data: false });
  assertErrorBody(await raw(h, 'DELETE', `/v1/events/trigger/${'x'.repeat(257)}`), 400);

  for (const q of ['limit=0', 'page=-1', 'limit=abc', 'channel=carrier-pigeon']) {
    assertErrorBody(await raw(h, 'GET', `/v1/messages?${q}`), 400);
  }
  assertErrorBody(await raw(h, 'DELETE', '/v1/messages/unknown'), 404);
  assertErrorBody(await raw(h, 'DELETE', '/v1/messages/000000000000000000000000'), 404);
  for (const q of ['limit=0', 'page=-1', 'channels=carrier-pigeon', 'severity=urgent',
    'after=yesterday', 'before=2024-13-01', 'after=2024-02-01&before=2024-01-01']) {
    assertErrorBody(await raw(h, 'GET', `/v1/notifications?${q}`), 400);
  }
});
