#!/usr/bin/env node
// Fan-out benchmark on loopback: one trigger to a topic of N subscribers, each with one
// push-webhook token, delivered to the C++ sink (herald_bench_sink). Measures, for each N given,
// the wall time from the trigger until the sink has counted N deliveries, deliveries/s, Herald's
// CPU per delivery (all threads, /proc/PID/stat) and its peak RSS (VmHWM). Cost growth is the
// point: deliveries/s at several N should be flat.
//
// Set-up per N (timed apart: setup_s, and Herald's CPU for it, setup_cpu_s): a fresh Herald
// (temporary data directory) and sink; the subscribers, each with its token and its membership of
// the topic, are created by Herald's import route (POST /v1/subscribers/import, NDJSON, 200 000
// lines a request, two requests in flight); the sink's counters are reset, and so is Herald's
// peak RSS (so peak_rss_mb is the fan-out's, not the import's); the fan-out starts once Herald is
// idle (the import's log checkpointed).
//
// Usage: node bench/fanout/run.mjs [--subscribers 20000,100000]
// Env:   BUILD_DIR (build) MAX_SECONDS (900: the whole run) RESULTS_DIR (bench/results)
//        RESULT_JSON (if set, {rows: [...]} with every size's row is also written there)
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free_port.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildDir = path.resolve(root, process.env.BUILD_DIR ?? 'build');
const resultsDir = path.resolve(root, process.env.RESULTS_DIR ?? 'bench/results');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const sizes = arg('subscribers', '20000,100000').split(',').map(Number);
const deadline = Date.now() + Number(process.env.MAX_SECONDS ?? 900) * 1000;
const KEY = 'bench-fanout-key-0123456789abcdef';
const IMPORT_LINES = 200_000;  // subscribers per import request: ~37 MB, under the route's 64 MiB
const SECRET = 'bench-fanout-secret';
const children = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cleanup() {
  for (const c of children) c.kill('SIGKILL');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function start(bin, args, env = {}) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  return { child, output: () => out };
}

async function until(what, fn, ms = 60_000) {
  const end = Math.min(Date.now() + ms, deadline);
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function api(base, method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { Authorization: `ApiKey ${KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : {};
}

// Runs `jobs` (async functions) with `width` in flight.
async function pool(jobs, width) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

function procStat(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);  // utime + stime
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))?.[1] ?? 0);
  return { cpuMs: ticks * 10, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

// Waits until the process used less than 2 % of a core over a second (60 s at most).
async function idle(pid) {
  const end = Date.now() + 60_000;
  let last = procStat(pid).cpuMs;
  while (Date.now() < end) {
    await sleep(1000);
    const now = procStat(pid).cpuMs;
    if (now - last < 20) return;
    last = now;
  }
}


async function runOnce(n) {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-fanout-'));
  try {
    const sink = start(path.join(buildDir, 'herald_bench_sink'),
      ['--listen', '127.0.0.1:0', '--threads', '1', '--secret', SECRET, '--max-seconds', '900']);
    const sinkPort = await until('the sink', async () => sink.output().match(/listening (\d+)/)?.[1]);
    const sinkUrl = `http://127.0.0.1:${sinkPort}`;
    const port = await freePort();
    const herald = start(path.join(buildDir, 'herald'), ['serve', '--listen', `127.0.0.1:${port}`, '--data', dir], {
      HERALD_ALLOW_PRIVATE_TARGETS: '1', HERALD_DEVELOPMENT_API_KEY: KEY, HERALD_LOG_LEVEL: 'warn',
    });
    const base = `http://127.0.0.1:${port}`;
    await until('Herald', async () => {
      if (herald.child.exitCode !== null) {
        console.error(`herald exited (${herald.child.exitCode}): ${herald.output()}`);
        process.exit(1);
      }
      return (await fetch(`${base}/healthz`)).ok;
    });
    const sinkCount = async () => (await (await fetch(`${sinkUrl}/stats`)).json()).count;

    await api(base, 'POST', '/v1/integrations', {
      providerId: 'push-webhook', channel: 'push', identifier: 'sink', name: 'sink', active: true,
      credentials: { webhookUrl: `${sinkUrl}/hook`, secretKey: SECRET },
    });
    await api(base, 'POST', '/v2/workflows', {
      name: 'fanout', workflowId: 'fanout', active: true,
      steps: [{ name: 'Push', type: 'push', controlValues: { subject: 'Hi {{subscriber.firstName}}', body: 'News {{payload.n}}' } }],
    });
    // One NDJSON line per subscriber, made before the clock starts.
    const chunks = [];
    for (let i = 0; i < n; i += IMPORT_LINES) {
      const lines = [];
      for (let j = i; j < Math.min(n, i + IMPORT_LINES); j++) {
        const subscriberId = `s${String(j).padStart(7, '0')}`;
        lines.push(JSON.stringify({
          subscriberId, firstName: 'Ann',
          channels: [{ providerId: 'push-webhook', integrationIdentifier: 'sink', credentials: { deviceTokens: [`tok-${subscriberId}`] } }],
          topics: ['news'],
        }));
      }
      chunks.push(Buffer.from(lines.join('\n') + '\n'));
    }
    const started = Date.now();
    const setupCpuMs = procStat(herald.child.pid).cpuMs;
    await pool(chunks.map((body) => async () => {
      const res = await fetch(`${base}/v1/subscribers/import`, {
        method: 'POST', body,
        headers: { Authorization: `ApiKey ${KEY}`, 'Content-Type': 'application/x-ndjson' },
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`import: ${res.status} ${text.slice(0, 300)}`);
    }), 2);
    const setupSeconds = (Date.now() - started) / 1000;
    const setupCpuSeconds = (procStat(herald.child.pid).cpuMs - setupCpuMs) / 1000;
    await fetch(`${sinkUrl}/reset`, { method: 'POST' });
    try {
      writeFileSync(`/proc/${herald.child.pid}/clear_refs`, '5');  // resets VmHWM to VmRSS
    } catch {
      console.error('cannot reset the peak RSS: peak_rss_mb includes the import');
    }
    // Settle: the import's log is checkpointed into the database (the checkpointer's CPU would
    // count against the fan-out), and nothing is left in flight.
    await idle(herald.child.pid);

    const before = procStat(herald.child.pid);
    const t0 = Date.now();
    await api(base, 'POST', '/v1/events/trigger', { name: 'fanout', to: [{ type: 'Topic', topicKey: 'news' }], payload: { n: 1 } });
    await until('the fan-out', async () => (await sinkCount()) >= n, 600_000);
    const seconds = (Date.now() - t0) / 1000;
    const after = procStat(herald.child.pid);
    herald.child.kill('SIGTERM');
    sink.child.kill('SIGTERM');
    return {
      subscribers: n,
      setup_s: setupSeconds,
      setup_cpu_s: setupCpuSeconds,  // Herald's, all threads (printed, not in the CSV)
      seconds,
      deliveries_per_s: Math.round(n / seconds),
      cpu_us_per_delivery: Math.round(((after.cpuMs - before.cpuMs) * 1000) / n),
      peak_rss_mb: Math.round(after.hwmKb / 1024),
      rss_after_mb: Math.round(after.rssKb / 1024),
    };
  } finally {
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const bin of ['herald', 'herald_bench_sink']) {
  if (!existsSync(path.join(buildDir, bin))) {
    console.error(`missing ${path.join(buildDir, bin)}: build it (cmake --build build --target herald herald_bench_sink)`);
    process.exit(2);
  }
}
const rows = [];
for (const n of sizes) {
  const row = await runOnce(n);
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.table(rows);
if (process.env.RESULT_JSON) writeFileSync(process.env.RESULT_JSON, `${JSON.stringify({ rows })}\n`);
mkdirSync(resultsDir, { recursive: true });
const when = new Date().toISOString();
const file = path.join(resultsDir, `${when.slice(0, 10)}-fanout.csv`);
if (!existsSync(file)) appendFileSync(file, 'when,cores,subscribers,setup_s,seconds,deliveries_per_s,cpu_us_per_delivery,peak_rss_mb,rss_after_mb\n');
for (const r of rows) {
  appendFileSync(file, [when, cpus().length, r.subscribers, r.setup_s, r.seconds, r.deliveries_per_s,
    r.cpu_us_per_delivery, r.peak_rss_mb, r.rss_after_mb].join(',') + '\n');
}
console.log(`appended ${rows.length} rows to ${path.relative(root, file)}`);
process.exit(0);
