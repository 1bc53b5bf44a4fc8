// Crash safety of the delivery pipeline: triggers are fired concurrently, the
// server is SIGKILLed mid-flight, restarted on the same data directory, and
// every trigger that was answered 201 before the crash must reach the receiver
// at least once. Duplicates are allowed only for sends in flight at the crash.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  makeTempDir, novu, raw, removeTempDir, startHerald, uid,
} from './harness.mjs';
import { sleep, startReceiver, waitFor } from './receiver.mjs';
import {
  FAST_RETRY_ENV, createHookIntegration, createPushWorkflow, createSubscriber, rawMessages,
} from './push_fixtures.mjs';

const SECRET = 'crash-s3cret';
const TOTAL = 300; // triggers to fire at most
const SUBSCRIBERS = 20; // one token each
const CONCURRENCY = 30; // triggers in flight at once
const KILL_AFTER = 100; // accepted triggers before the SIGKILL
const REDELIVERY_TIMEOUT_MS = 20_000;
const IN_FLIGHT_WINDOW_MS = 2_000; // sends this close to the kill may be repeated

let dataDir;
let keys;
let h;
let rx;
const env = { ...FAST_RETRY_ENV, HERALD_RETRY_ATTEMPTS: '10' };

before(async () => {
  dataDir = makeTempDir('herald-crash-');
  rx = await startReceiver({
    secret: SECRET,
    behave: (req) => ({ status: 200, delayMs: Math.floor(Math.random() * 21), body: { id: `ok-${req.seq}` } }),
  });
  h = await startHerald({ dataDir, env });
  keys = { HERALD_DEVELOPMENT_API_KEY: h.devKey, HERALD_PRODUCTION_API_KEY: h.prodKey };
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
  if (rx) await rx.close();
  if (dataDir) removeTempDir(dataDir);
});

test('every trigger accepted before a SIGKILL is delivered after the restart', { timeout: 60_000 }, async (t) => {
  const sdk = novu(h);
  const integ = await createHookIntegration(sdk, rx.url, SECRET);
  const wf = await createPushWorkflow(sdk);
  const subs = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    subs.push(await createSubscriber(sdk, { firstName: `C${i}`, tokens: [uid(`ctok${i}`)], integration: integ }));
  }

  const run = uid('run');
  const accepted = new Map(); // transactionId -> index
  const fired = new Set();
  const failures = [];
  let next = 0;
  let killing = null;
  let killAt = 0;
  const victim = h;

  async function worker() {
    while (next < TOTAL && !killing) {
      const i = next++;
      const transactionId = `${run}-${i}`;
      fired.add(transactionId);
      try {
        const res = await raw(victim, 'POST', '/v1/events/trigger', {
          body: {
            name: wf.workflowId,
            to: subs[i % SUBSCRIBERS],
            payload: { orderId: i, tx: transactionId },
            transactionId,
          },
        });
        if (res.status === 201) {
          assert.equal(res.json?.data?.status, 'processed', res.text);
          assert.equal(res.json?.data?.transactionId, transactionId);
          accepted.set(transactionId, i);
          if (accepted.size >= KILL_AFTER && !killing) {
            killAt = Date.now();
            killing = victim.kill();
          }
        } else {
          failures.push(`${res.status} ${res.text.slice(0, 200)}`);
        }
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        // Refused or cut off by the crash: not accepted, nothing to check.
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert.ok(killing, `the server was killed (accepted ${accepted.size}, failures: ${failures.slice(0, 5).join(' | ')})`);
  const exit = await killing;
  assert.equal(exit.signal, 'SIGKILL');
  assert.deepEqual(failures, [], 'no trigger was refused before the crash');

  await sleep(200); // let bytes already on the wire land
  const beforeRestart = rx.requests.length;
  const deliveredBeforeKill = new Set(rx.requests.map((r) => r.json?.payload?.tx));
  const nearKill = rx.requests.filter((r) => r.receivedAt >= killAt - IN_FLIGHT_WINDOW_MS).length;
  t.diagnostic(`fired ${fired.size}, accepted ${accepted.size}, delivered before the kill ${beforeRestart} ` +
    `(${[...accepted.keys()].filter((x) => !deliveredBeforeKill.has(x)).length} accepted ones still pending), ` +
    `requests within ${IN_FLIGHT_WINDOW_MS} ms of the kill ${nearKill}`);

  h = await startHerald({ dataDir, env: { ...env, ...keys } });

  const deliveries = () => {
    const m = new Map();
    for (const r of rx.requests) {
      const tx = r.json?.payload?.tx;
      if (tx) m.set(tx, (m.get(tx) ?? 0) + 1);
    }
    return m;
  };
  const missing = () => {
    const d = deliveries();
    return [...accepted.keys()].filter((tx) => !d.has(tx));
  };
  try {
    await waitFor(() => missing().length === 0, REDELIVERY_TIMEOUT_MS, {
      interval: 100,
      describe: () => `${missing().length} accepted triggers never delivered, e.g. ${missing().slice(0, 5).join(', ')}`,
    });
  } catch (err) {
    assert.fail(err.message);
  }

  await sleep(500); // late duplicates, if any
  const d = deliveries();
  const dups = [...d.entries()].filter(([, n]) => n > 1);
  const unknown = [...d.keys()].filter((tx) => !fired.has(tx));
  t.diagnostic(`deliveries ${rx.requests.length} (${rx.requests.length - beforeRestart} after the restart), ` +
    `distinct transactions ${d.size}, duplicated ${dups.length}: ${dups.slice(0, 10).map(([tx, n]) => `${tx}x${n}`).join(' ')}`);

  assert.deepEqual(unknown, [], 'no delivery for a transaction that was never fired');
  assert.ok(rx.requests.every((r) => r.sigOk), 'every delivery is signed');
  assert.ok(dups.length <= Math.max(nearKill, 1),
    `duplicates (${dups.length}) only from sends in flight at the crash (at most ${nearKill} were near it)`);

  // A few accepted transactions end up as sent messages after the restart.
  const sample = [...accepted.keys()].sort(() => Math.random() - 0.5).slice(0, 5);
  for (const tx of sample) {
    await waitFor(async () => {
      const page = await rawMessages(h, { transactionId: tx });
      return page.data.length >= 1 && page.data.every((m) => m.status === 'sent');
    }, 5_000, { interval: 100, describe: () => `messages of ${tx} not all sent` });
  }

  // And the restarted server still takes new triggers.
  const fresh = `${run}-after`;
  const res = await raw(h, 'POST', '/v1/events/trigger', {
    body: { name: wf.workflowId, to: subs[0], payload: { tx: fresh }, transactionId: fresh },
  });
  assert.equal(res.status, 201, res.text);
  await waitFor(() => deliveries().has(fresh), 5_000);
});
