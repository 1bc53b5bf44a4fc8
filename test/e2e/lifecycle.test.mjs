// Process lifecycle of the delivery pipeline: SIGTERM drains a send in flight and records it,
// a retry waiting at a crash is sent after the restart, and a data directory serves one process.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { makeTempDir, novu, removeTempDir, startHerald, uid } from './harness.mjs';
import { sleep, startReceiver, waitFor } from './receiver.mjs';
import {
  createHookIntegration, createPushWorkflow, createSubscriber, waitForMessages,
} from './push_fixtures.mjs';

const T = { timeout: 60_000 };
const SECRET = 'lifecycle-s3cret';
const cleanups = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

// A receiver, a data directory and a server on it; everything is stopped after the file.
async function setUp(behave, env = {}) {
  const rx = await startReceiver({ secret: SECRET, behave });
  const dataDir = makeTempDir('herald-lifecycle-');
  const state = { rx, dataDir, h: undefined, keys: undefined };
  state.start = async () => {
    state.h = await startHerald({ dataDir, env: { ...env, ...state.keys } });
    state.keys ??= {
      HERALD_DEVELOPMENT_API_KEY: state.h.devKey, HERALD_PRODUCTION_API_KEY: state.h.prodKey,
    };
    return state.h;
  };
  cleanups.push(async () => {
    if (state.h) await state.h.stop();
    await rx.close();
    removeTempDir(dataDir);
  });
  await state.start();
  const sdk = novu(state.h);
  state.integration = await createHookIntegration(sdk, rx.url, SECRET);
  state.workflow = await createPushWorkflow(sdk);
  return state;
}

async function triggerTo(h, workflow, subscriberId) {
  const res = await novu(h).trigger({ workflowId: workflow.workflowId, to: subscriberId, payload: { orderId: 1 } });
  assert.equal(res.result.status, 'processed', JSON.stringify(res.result));
  return res.result.transactionId;
}

test('SIGTERM waits for a send in flight, records it, and it is not sent again', T, async () => {
  const SLOW_MS = 1_500;
  const s = await setUp(() => ({ status: 200, delayMs: SLOW_MS }), { HERALD_SHUTDOWN_GRACE_MS: '8000' });
  const token = uid('slow');
  const subscriberId = await createSubscriber(novu(s.h), { tokens: [token], integration: s.integration });
  const tx = await triggerTo(s.h, s.workflow, subscriberId);
  await s.rx.waitForToken(token);

  const exit = await s.h.stop();
  const exitedAt = Date.now();
  s.h = undefined;
  assert.equal(exit.forced, false, 'exited on SIGTERM without being killed');
  assert.equal(exit.code, 0);
  const [rec] = s.rx.forToken(token);
  assert.ok(rec.answeredAt !== null && rec.answeredAt <= exitedAt,
    'the process stayed up until the receiver had answered');

  // The outcome was recorded before the exit: after the restart the message is sent, attempted
  // once, and the receiver never sees it again.
  const h = await s.start();
  const [message] = await waitForMessages(h, tx, { count: 1, timeoutMs: 5_000 });
  assert.equal(message.status, 'sent', JSON.stringify(message));
  assert.equal(message.attempts, 1, JSON.stringify(message));
  await sleep(1_000);
  assert.equal(s.rx.count(token), 1, 'delivered once');
});

test('a retry waiting when the process is killed is sent after the restart', T, async () => {
  const RETRY_AFTER_S = 3;
  const s = await setUp((rec, n) => (n === 1
    ? { status: 503, headers: { 'retry-after': String(RETRY_AFTER_S) } }
    : { status: 200 }));
  const token = uid('flaky');
  const subscriberId = await createSubscriber(novu(s.h), { tokens: [token], integration: s.integration });
  const tx = await triggerTo(s.h, s.workflow, subscriberId);

  // The 503 is recorded (attempts 1, a retry pending), then the process dies.
  await waitForMessages(s.h, tx, { count: 1, until: ([m]) => m.attempts === 1, timeoutMs: 5_000 });
  const firstAt = s.rx.forToken(token)[0].answeredAt;
  const exit = await s.h.kill();
  s.h = undefined;
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(s.rx.count(token), 1);

  const h = await s.start();
  const [message] = await waitForMessages(h, tx, { count: 1, timeoutMs: 15_000 });
  assert.equal(message.status, 'sent', JSON.stringify(message));
  assert.equal(message.attempts, 2, JSON.stringify(message));
  const requests = s.rx.forToken(token);
  assert.equal(requests.length, 2);
  // Retry-After held across the restart (a little slack for clock granularity).
  assert.ok(requests[1].receivedAt - firstAt >= RETRY_AFTER_S * 1000 - 50,
    `retried ${requests[1].receivedAt - firstAt} ms after the 503`);
});

test('a second server on the same data directory is refused while the first runs', T, async () => {
  const s = await setUp(() => ({ status: 200 }));
  await assert.rejects(startHerald({ dataDir: s.dataDir, env: s.keys }), (err) => {
    assert.match(err.stderr ?? '', /in use by another herald process/, err.stderr);
    return true;
  });
  // Nor can a server with a data directory of its own take the first one's database.
  const database = `sqlite://${s.dataDir}/herald.db`;
  await assert.rejects(startHerald({ env: { ...s.keys, HERALD_DATABASE_URL: database } }), (err) => {
    assert.match(err.stderr ?? '', /database .* is in use by another herald process/, err.stderr);
    return true;
  });
  // The first one is unaffected, and once it is gone the directory can be served again.
  const token = uid('lock');
  const subscriberId = await createSubscriber(novu(s.h), { tokens: [token], integration: s.integration });
  await triggerTo(s.h, s.workflow, subscriberId);
  await s.rx.waitForToken(token);
  await s.h.stop();
  s.h = undefined;
  await s.start();
  await waitFor(async () => (await novu(s.h).subscribers.retrieve(subscriberId)).result.subscriberId === subscriberId);
});
