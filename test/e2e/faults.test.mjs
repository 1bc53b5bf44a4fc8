// Delivery faults: transient failures are retried with backoff (Retry-After
// honoured), permanent ones are not, timeouts and reset connections count as
// transient, and exhausted retries end in status "error".
//
// Herald runs with HERALD_RETRY_BASE_MS=50, HERALD_RETRY_MAX_MS=500,
// HERALD_HTTP_TIMEOUT_MS=1500 and (here) 6 attempts; the exhaustion test starts
// a second server with HERALD_RETRY_ATTEMPTS=3.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertErrorBody, novu, raw, startHerald, uid } from './harness.mjs';
import { sleep, startReceiver, waitFor } from './receiver.mjs';
import {
  FAST_RETRY_ENV, createHookIntegration, createPushWorkflow, createSubscriber,
  devices, isDate, waitForMessages,
} from './push_fixtures.mjs';

const T = { timeout: 30_000 };
const SECRET = 'faults-s3cret';

let h;
let sdk;
let rx;
let integ;
let wf;
const scripts = new Map(); // token -> (req, n) => receiver action

before(async () => {
  rx = await startReceiver({ secret: SECRET, behave: (req, n) => scripts.get(req.token)?.(req, n) });
  h = await startHerald({ env: { ...FAST_RETRY_ENV, HERALD_RETRY_ATTEMPTS: '6' } });
  sdk = novu(h);
  integ = await createHookIntegration(sdk, rx.url, SECRET);
  wf = await createPushWorkflow(sdk);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  if (rx) await rx.close();
});

const tok = () => uid('ftok');

/** A subscriber whose tokens are answered by the given scripts ({token: script}); triggers once. */
async function triggerWithScripts(byToken, { server = h, client = sdk, integration = integ, workflow = wf } = {}) {
  for (const [t, script] of Object.entries(byToken)) scripts.set(t, script);
  const subscriberId = await createSubscriber(client, { tokens: Object.keys(byToken), integration });
  const res = await client.trigger({ workflowId: workflow.workflowId, to: subscriberId, payload: { orderId: 1 } });
  assert.equal(res.result.status, 'processed', JSON.stringify(res.result));
  return { subscriberId, tx: res.result.transactionId, server };
}

async function assertCountStays(token, n, pause = 1_000) {
  await sleep(pause);
  assert.equal(rx.count(token), n, `requests for ${token}: ${JSON.stringify(rx.forToken(token).map((r) => r.outcome))}`);
}

function assertSameMessage(reqs) {
  for (const r of reqs) assert.ok(r.sigOk, 'every attempt is signed');
  assert.equal(new Set(reqs.map((r) => r.json?.messageId)).size, 1, 'every attempt carries the same messageId');
}

test('500, 503, 429 with Retry-After: 1, then 200: delivered once after 4 attempts', T, async () => {
  const t = tok();
  const plan = [
    { status: 500, body: { message: 'boom' } },
    { status: 503, body: { message: 'unavailable' } },
    { status: 429, headers: { 'retry-after': '1' }, body: { message: 'slow down' } },
  ];
  const { tx, subscriberId } = await triggerWithScripts({
    [t]: (req, n) => plan[n - 1] ?? { status: 200, body: { id: 'provider-ok-4' } },
  });

  const [m] = await waitForMessages(h, tx, { count: 1, timeoutMs: 10_000 });
  assert.equal(m.status, 'sent', JSON.stringify(m));
  assert.equal(m.deliveryStatus, 'delivered');
  assert.equal(m.attempts, 4);
  assert.equal(m.providerResponseId, 'provider-ok-4');
  assert.ok(isDate(m.lastAttemptAt));
  await assertCountStays(t, 4);

  const reqs = rx.forToken(t);
  assert.deepEqual(reqs.map((r) => r.outcome?.status), [500, 503, 429, 200]);
  assertSameMessage(reqs);
  const waited = reqs[3].receivedAt - reqs[2].answeredAt;
  assert.ok(waited >= 900, `the retry after 429 waited Retry-After: 1 (about 1000 ms), waited ${waited} ms`);
  assert.ok(waited < 5_000, `and not much longer: ${waited} ms`);

  const sdkMsg = (await sdk.messages.retrieve({ transactionId: [tx] })).result.data;
  assert.equal(sdkMsg.length, 1);
  assert.equal(sdkMsg[0].status, 'sent');
  const dev = (await devices(h, subscriberId)).find((d) => d.token === t);
  assert.ok(isDate(dev?.lastActiveAt), JSON.stringify(dev));
});

test('400 is permanent: status error after exactly one attempt', T, async () => {
  const t = tok();
  const { tx } = await triggerWithScripts({ [t]: () => ({ status: 400, body: { message: 'bad token' } }) });
  const [m] = await waitForMessages(h, tx, { count: 1 });
  assert.equal(m.status, 'error', JSON.stringify(m));
  assert.equal(m.deliveryStatus, 'failed');
  assert.equal(m.attempts, 1);
  assert.equal(typeof m.errorId, 'string');
  assert.equal(typeof m.errorText, 'string');
  assert.match(m.errorText, /400/);
  await assertCountStays(t, 1);

  const sdkMsg = (await sdk.messages.retrieve({ transactionId: [tx] })).result.data[0];
  assert.equal(sdkMsg.status, 'error');
  assert.equal(sdkMsg.errorText, m.errorText);
});

test('any 2xx is delivered (202 with a text body, 204 with none)', T, async () => {
  const [a, b] = [tok(), tok()];
  const { tx } = await triggerWithScripts({
    [a]: () => ({ status: 202, headers: { 'content-type': 'text/plain' }, body: 'accepted' }),
    [b]: () => ({ status: 204, body: '' }),
  });
  const ms = await waitForMessages(h, tx, { count: 2 });
  for (const m of ms) {
    assert.equal(m.status, 'sent', JSON.stringify(m));
    assert.equal(m.attempts, 1);
  }
  await assertCountStays(a, 1, 500);
  assert.equal(rx.count(b), 1);
});

test('a request that hangs times out (HERALD_HTTP_TIMEOUT_MS=1500) and is retried', T, async () => {
  const t = tok();
  const { tx } = await triggerWithScripts({ [t]: (req, n) => (n === 1 ? 'hang' : { status: 200, body: { id: 'after-hang' } }) });
  const [m] = await waitForMessages(h, tx, { count: 1, timeoutMs: 10_000 });
  assert.equal(m.status, 'sent', JSON.stringify(m));
  assert.equal(m.attempts, 2);
  assert.equal(m.providerResponseId, 'after-hang');
  await assertCountStays(t, 2, 500);
  const reqs = rx.forToken(t);
  assertSameMessage(reqs);
  const gap = reqs[1].receivedAt - reqs[0].receivedAt;
  assert.ok(gap >= 1400, `second attempt only after the 1500 ms timeout: ${gap} ms`);
  assert.ok(gap < 6_000, `timeout is enforced: ${gap} ms`);
});

test('a reset or closed connection is retried', T, async () => {
  const [r, c] = [tok(), tok()];
  const { tx } = await triggerWithScripts({
    [r]: (req, n) => (n === 1 ? 'reset' : { status: 200 }), // TCP RST
    [c]: (req, n) => (n === 1 ? 'close' : { status: 200 }), // FIN, no response
  });
  const ms = await waitForMessages(h, tx, { count: 2, timeoutMs: 10_000 });
  for (const m of ms) {
    assert.equal(m.status, 'sent', JSON.stringify(m));
    // libcurl itself resends once on a fresh connection when a reused keep-alive connection
    // dies before any response; that resend is not a queue attempt.
    assert.ok(m.attempts === 1 || m.attempts === 2, JSON.stringify(m));
  }
  await assertCountStays(r, 2, 500);
  assert.equal(rx.count(c), 2);
  assertSameMessage(rx.forToken(r));
  assertSameMessage(rx.forToken(c));
});

test('retries exhausted (HERALD_RETRY_ATTEMPTS=3, always 500): status error after exactly 3 requests', T, async () => {
  const h3 = await startHerald({ env: { ...FAST_RETRY_ENV, HERALD_RETRY_ATTEMPTS: '3' } });
  try {
    const sdk3 = novu(h3);
    const integ3 = await createHookIntegration(sdk3, rx.url, SECRET);
    const wf3 = await createPushWorkflow(sdk3);
    const t = tok();
    const { tx } = await triggerWithScripts(
      { [t]: () => ({ status: 500, body: { message: 'always broken' } }) },
      { server: h3, client: sdk3, integration: integ3, workflow: wf3 },
    );
    const [m] = await waitForMessages(h3, tx, { count: 1, timeoutMs: 10_000 });
    assert.equal(m.status, 'error', JSON.stringify(m));
    assert.equal(m.deliveryStatus, 'failed');
    assert.equal(m.attempts, 3);
    assert.equal(typeof m.errorId, 'string');
    assert.match(m.errorText ?? '', /500/);
    await assertCountStays(t, 3);
    assertSameMessage(rx.forToken(t));
  } finally {
    await h3.stop();
  }
});

test('a full trigger queue answers 503 with Retry-After and accepts again once it drains', T, async () => {
  // One send at a time and two queued triggers at most: while the receiver holds the first
  // request, the next two triggers wait in the queue and the fourth is refused.
  const h4 = await startHerald({
    env: { ...FAST_RETRY_ENV, HERALD_MAX_IN_FLIGHT: '1', HERALD_MAX_QUEUED_TRIGGERS: '2' },
  });
  let open;
  const gate = new Promise((resolve) => { open = resolve; });
  try {
    const sdk4 = novu(h4);
    const integ4 = await createHookIntegration(sdk4, rx.url, SECRET);
    const wf4 = await createPushWorkflow(sdk4);
    const t = tok();
    scripts.set(t, (req) => gate.then(() => ({ status: 200, body: { id: `held-${req.json?.payload?.n}` } })));
    const subscriberId = await createSubscriber(sdk4, { tokens: [t], integration: integ4 });
    const trigger = (n) => raw(h4, 'POST', '/v1/events/trigger', {
      body: { name: wf4.workflowId, to: subscriberId, payload: { orderId: n, n } },
    });

    assert.equal((await trigger(1)).status, 201);
    await waitFor(() => rx.count(t) === 1, 5_000, { describe: () => `${rx.count(t)} requests` });
    assert.equal((await trigger(2)).status, 201);
    assert.equal((await trigger(3)).status, 201);
    const full = await trigger(4);
    assertErrorBody(full, 503, { includes: 'queue is full', path: '/v1/events/trigger' });
    assert.equal(full.headers.get('retry-after'), '1');

    open();
    await waitFor(() => rx.count(t) === 3, 10_000, { describe: () => `${rx.count(t)} requests` });
    const again = await trigger(5);
    assert.equal(again.status, 201, again.text);
    await waitFor(() => rx.count(t) === 4, 10_000, { describe: () => `${rx.count(t)} requests` });
    // Every accepted trigger was delivered once; the refused one never.
    assert.deepEqual(rx.forToken(t).map((r) => r.json.payload.n).sort(), [1, 2, 3, 5]);
    await assertCountStays(t, 4, 300);
  } finally {
    open();
    await h4.stop();
  }
});

test('without HERALD_ALLOW_PRIVATE_TARGETS a loopback webhook is refused: status error, no request, no retry', T, async () => {
  const h4 = await startHerald({ env: { ...FAST_RETRY_ENV, HERALD_ALLOW_PRIVATE_TARGETS: undefined } });
  try {
    const sdk4 = novu(h4);
    const wf4 = await createPushWorkflow(sdk4);
    // By address and by a name that resolves to loopback: the check is on what the name resolves to.
    for (const url of [rx.url, rx.url.replace('127.0.0.1', 'localhost')]) {
      const integ4 = await createHookIntegration(sdk4, url, SECRET);
      const t = tok();
      const { tx } = await triggerWithScripts(
        { [t]: () => ({ status: 200, body: { id: 'must-not-arrive' } }) },
        { server: h4, client: sdk4, integration: integ4, workflow: wf4 },
      );
      const [m] = await waitForMessages(h4, tx, { count: 1, timeoutMs: 10_000 });
      assert.equal(m.status, 'error', JSON.stringify(m));
      assert.equal(m.deliveryStatus, 'failed');
      assert.equal(m.attempts, 1, 'a refused target is permanent');
      assert.equal(m.errorId, 'FORBIDDEN_TARGET');
      assert.match(m.errorText ?? '', /private address.*HERALD_ALLOW_PRIVATE_TARGETS=1/);
      await assertCountStays(t, 0);
      await sdk4.integrations.delete(integ4.id);
    }
  } finally {
    await h4.stop();
  }
});
