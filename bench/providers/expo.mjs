// The Expo rows: Herald and expo-server-sdk (reference.mjs) against Expo's Node mock over TLS
// (src/providers/expo/expo_mock.mjs, run in this process); Herald and reference rows, no ceiling.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  HOST, closeMock, cpuByThread, mocks, processTicks, setupHerald, sleep, startHerald, startReference, stopChild,
  sumTicks, ticksToUs, trigger,
} from './support.mjs';

export const expoKind = {
  title: 'Expo', authKind: 'distinct access tokens',
  nOf: (r, M) => (r.ticket?.status === 'ok' ? bodyN(r.message?.body, M) : -1),
};
function bodyN(body, M) {
  if (typeof body !== 'string' || !body.startsWith('n=')) return -1;
  const n = Number(body.slice(2));
  return Number.isInteger(n) && n >= 0 && n < M ? n : -1;
}
async function startExpo(bench) {
  const { pki, subscribers: S } = bench;
  const { startExpoMock } = await import('../../src/providers/expo/expo_mock.mjs');
  const mock = await startExpoMock({ tls: pki.server });
  mocks.add(mock);
  const accessToken = `bench-expo-${randomBytes(16).toString('hex')}`;
  mock.requireAccessToken(accessToken);
  return {
    mock, accessToken,
    tokens: Array.from({ length: S }, (_, k) => `ExponentPushToken[bench-${k}-${randomBytes(8).toString('hex')}]`),
    auth: () => new Set(mock.sends.map((r) => r.accessToken)).size,
  };
}
/** Which of the M messages the Expo mock has accepted (in-process), and duplicates. */
function expoTracker(mock, M) {
  const seen = new Uint8Array(M);
  let index = 0;
  const t = { distinct: 0, duplicates: 0, lastAt: 0 };
  t.update = () => {
    const rec = mock.received;
    for (; index < rec.length; index++) {
      const n = expoKind.nOf(rec[index], M);
      if (n < 0) continue;
      if (seen[n]) { t.duplicates += 1; continue; }
      seen[n] = 1;
      t.distinct += 1;
      if (t.distinct === M) t.lastAt = rec[index].at;
    }
    return t.distinct === M;
  };
  return t;
}
export async function measureExpo(bench, sender) {
  const { messages: M, pki, rev: REV } = bench;
  const e = await startExpo(bench);
  let herald;
  let ref;
  try {
    const track = expoTracker(e.mock, M);
    const conn0 = e.mock.connections;
    const auth0 = e.auth();
    const req0 = e.mock.requests.length;
    let startAt;
    let t;
    let cpu0;
    let ticks0;
    if (sender === 'herald') {
      herald = await startHerald(bench, pki.ca.certPath, 'expo');
      await setupHerald(herald, { providerId: 'expo', credentials: { apiKey: e.accessToken, baseUrl: e.mock.origin } }, e.tokens);
      cpu0 = cpuByThread(herald.pid);
    } else {
      ref = await startReference(bench, {
        provider: 'expo', host: HOST, port: e.mock.port, origin: e.mock.origin, caFile: pki.ca.certPath, messages: M,
        concurrency: 6, subscribers: e.tokens.map((token, k) => ({ subscriberId: `sub-${k}`, token })), expo: { accessToken: e.accessToken },
      });
      ticks0 = processTicks(ref.pid);
    }
    const self0 = process.cpuUsage();
    const goAt = Date.now();
    if (herald) t = trigger(bench, herald); else ref.go();
    const deadline = goAt + bench.waitSeconds * 1000;
    let complete = false;
    let doneAt = 0;
    while (Date.now() < deadline) {
      if (track.update()) { complete = true; break; }
      if (herald && (herald.child.exitCode !== null || (t.finished && t.acked === 0))) break;
      if (ref?.isDone()) { doneAt ||= Date.now(); if (Date.now() - doneAt > 2_000) break; }
      if (ref && ref.child.exitCode !== null && !doneAt) break;
      await sleep(20);
    }
    const self1 = process.cpuUsage(self0);
    const measuredEnd = Date.now();
    const cpu1 = herald ? cpuByThread(herald.pid) : null;
    const ticks1 = ref ? processTicks(ref.pid) : NaN;
    let done = null;
    if (herald) await t.done; else done = await ref.done(Math.max(5_000, deadline - Date.now()));
    await sleep(300);
    track.update();
    startAt = herald ? goAt : done.startAt;
    const endAt = complete ? track.lastAt : measuredEnd;
    const requests = e.mock.requests.length - req0;
    const mockCpuUs = (self1.user + self1.system);
    const row = {
      provider: 'expo', sender, library: herald ? `herald ${REV}` : ref.ready.library,
      transport: herald ? 'h2 (TLS)' : ref.ready.settings?.transport, concurrency: herald ? null : 6,
      seconds: (endAt - startAt) / 1000, complete, delivered: track.distinct, duplicates: track.duplicates,
      connections: e.mock.connections - conn0, auth: e.auth() - auth0, requests,
      // The Node mock runs in this process: its CPU is this process's (with the polling and, in
      // Herald's row, the triggers), so per message only, as an upper bound.
      mockCpuUsPerRequest: null, mockCpuUsPerMessage: mockCpuUs / M,
      mockBusy: mockCpuUs / 1e6 / ((measuredEnd - goAt) / 1000),
      mock: { node_mock: 'src/providers/expo/expo_mock.mjs (in this process, TLS)' },
    };
    if (herald) {
      const byThread = {};
      for (const [name, ticks] of Object.entries(cpu1)) {
        const used = ticks - (cpu0[name] ?? 0);
        if (used > 0) byThread[name] = Math.round(ticksToUs(used) / M);
      }
      Object.assign(row, {
        cpuUs: ticksToUs(sumTicks(cpu1) - sumTicks(cpu0)) / M,
        cpuByThread: Object.fromEntries(Object.entries(byThread).sort((a, b) => b[1] - a[1])),
        triggersAcked: t.acked, triggerErrors: t.errors, triggerSeconds: t.endAt ? (t.endAt - goAt) / 1000 : null, problems: t.problems,
      });
    } else {
      Object.assign(row, {
        cpuUs: Number.isNaN(ticks1) ? done.cpuUs / M : ticksToUs(ticks1 - ticks0) / M,
        settings: ref.ready.settings, sent: done.sent, failed: done.failed, problems: done.errors,
      });
    }
    return row;
  } finally {
    if (herald) {
      await stopChild(herald.child);
      rmSync(herald.dataDir, { recursive: true, force: true });
    }
    if (ref) await stopChild(ref.child, 5_000);
    await closeMock(e.mock);
  }
}
