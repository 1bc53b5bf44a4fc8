// Helpers shared by run.mjs and expo.mjs: child processes (the `children` and `mocks` run.mjs
// stops on exit, stopChild, runTimed), /proc CPU accounting, free ports, stable copies of build
// outputs, HTTP/1.1 requests; and the senders every Herald or reference row starts: Herald (its
// API, setup and bulk triggers) and reference.mjs. Functions that need the run's settings take
// `bench`, built once by run.mjs ({tmp, heraldBin, messages, subscribers, waitSeconds, rev, pki}).
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free_port.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const API_KEY = 'bench-development-api-key-0001';
const WORKFLOW = 'bench';
export const HOST = '127.0.0.1';

// ------------------------------------------------------------------ processes and /proc
export const children = new Set();
export const mocks = new Set();

export function fail(msg) {
  process.stderr.write(`bench/providers: ${msg}\n`);
  process.exit(2);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** Waits for a child's exit, up to ms; resolves true if it exited. */
export function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}
export async function stopChild(child, graceMs = 10_000) {
  if (!child) return;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    if (!await exited(child, graceMs)) { child.kill('SIGKILL'); await exited(child, 5_000); }
  }
  children.delete(child);
}
export async function closeMock(mock) {
  if (!mock) return;
  mocks.delete(mock);
  await Promise.race([mock.close(), sleep(5_000)]);
}

// A process's CPU time so far by thread name (user + system, clock ticks).
export function cpuByThread(pid) {
  const out = {};
  let tasks = [];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const t of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[comm] = (out[comm] ?? 0) + Number(f[11]) + Number(f[12]); // utime, stime
    } catch { /* the thread ended */ }
  }
  return out;
}
export function processTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch { return NaN; }
}
export const sumTicks = (o) => Object.values(o).reduce((a, b) => a + b, 0);
export const ticksToUs = (ticks) => ticks * 1e6 / CLK_TCK;

export { freePort };

/** A stable private copy (at dst) of a build output (the tree's may be relinked during the run). */
export async function stableCopy(src, dst) {
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const before = statSync(src);
      copyFileSync(src, dst);
      const after = statSync(src);
      if (before.size === after.size && before.mtimeMs === after.mtimeMs && statSync(dst).size === after.size
        && Date.now() - after.mtimeMs > 2_000) {
        chmodSync(dst, 0o755);
        return { path: dst, built: after.mtime };
      }
    } catch { /* being rebuilt */ }
    await sleep(1_000);
  }
  fail(`could not take a stable copy of ${src} (is it being rebuilt?)`);
  return null;
}

/** Runs a command under bash; resolves {code, stdout, cpuUs: the command's user + system time}. */
export function runTimed(argv0, args, timeoutMs) {
  return new Promise((resolve) => {
    // `times` prints the shell's and then its children's user and system time.
    const child = spawn('bash', ['-c', '"$@"; rc=$?; times; exit $rc', 'bench', argv0, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      const t = [...stdout.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)].at(-1);
      const cpuUs = t ? ((Number(t[1]) * 60 + Number(t[2])) + (Number(t[3]) * 60 + Number(t[4]))) * 1e6 : NaN;
      resolve({ code, stdout, stderr, cpuUs });
    });
  });
}

// --------------------------------------------------------------------------------- Herald
export const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
/** One HTTP/1.1 request; resolves {status, json, text}. */
export function request(port, method, urlPath, body, { agent = keepAlive, headers = {}, timeout = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({
      host: HOST, port, path: urlPath, method, agent, timeout,
      headers: {
        ...headers,
        ...(data !== undefined ? { 'content-type': headers['content-type'] ?? 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}
export const api = (herald, method, urlPath, body) => request(herald.port, method, urlPath, body, { headers: { authorization: `ApiKey ${API_KEY}` } });
export async function expectApi(herald, method, urlPath, body, status) {
  const res = await api(herald, method, urlPath, body);
  if (res.status !== status) throw new Error(`${method} ${urlPath} answered ${res.status}, expected ${status}: ${res.text.slice(0, 400)}`);
  return res;
}

export async function startHerald(bench, caFile, label) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  Object.assign(env, {
    HERALD_DEVELOPMENT_API_KEY: API_KEY, HERALD_ALLOW_PRIVATE_TARGETS: '1', HERALD_LOG_LEVEL: 'warn',
    ...(caFile ? { HERALD_CA_FILE: caFile } : {}),
  });
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const dataDir = mkdtempSync(path.join(bench.tmp, `data-${label}-`));
    const logPath = path.join(bench.tmp, `herald-${label}-${attempt}.log`);
    const log = openSync(logPath, 'w');
    const child = spawn(bench.heraldBin, ['serve', '--listen', `${HOST}:${port}`, '--data', dataDir], {
      env, stdio: ['ignore', log, log],
    });
    closeSync(log);
    children.add(child);
    const herald = { child, port, pid: child.pid, logPath, dataDir };
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await api(herald, 'GET', '/healthz');
        if (res.status === 200) return herald;
      } catch { /* not yet */ }
      await sleep(100);
    }
    const tail = readFileSync(logPath, 'utf8').slice(-600);
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
    if (!/address already in use|EADDRINUSE/i.test(tail) || attempt === 3) throw new Error(`herald did not start: ${tail}`);
  }
  throw new Error('herald did not start');
}

export async function setupHerald(herald, integration, tokens) {
  await expectApi(herald, 'POST', '/v1/integrations', {
    providerId: integration.providerId, channel: 'push', name: 'bench', identifier: 'bench', active: true,
    credentials: integration.credentials,
  }, 201);
  for (let k = 0; k < tokens.length; k++) {
    await expectApi(herald, 'POST', '/v2/subscribers', { subscriberId: `sub-${k}` }, 201);
    await expectApi(herald, 'PUT', `/v1/subscribers/sub-${k}/credentials`, {
      providerId: integration.providerId, integrationIdentifier: 'bench', credentials: { deviceTokens: [tokens[k]] },
    }, 200);
  }
  await expectApi(herald, 'POST', '/v2/workflows', {
    name: WORKFLOW, workflowId: WORKFLOW, active: true,
    steps: [{ name: 'Push', type: 'push', controlValues: { title: 'Hi {{subscriber.subscriberId}}', body: 'n={{payload.n}}' } }],
  }, 201);
}

/**
 * Sends the M (bench.messages) triggers (100 events a bulk request, 4 requests in flight); returns a
 * handle whose `done` promise resolves when every request has been answered.
 */
export function trigger(bench, herald, eventExtra) {
  const { messages: M, subscribers: S } = bench;
  const BATCH = 100;
  const batches = Math.ceil(M / BATCH);
  let nextBatch = 0;
  const t = { acked: 0, errors: 0, problems: [], finished: false, endAt: 0 };
  t.done = Promise.all(Array.from({ length: 4 }, async () => {
    for (;;) {
      const b = nextBatch++;
      if (b >= batches) return;
      const events = [];
      for (let i = b * BATCH; i < Math.min(M, (b + 1) * BATCH); i++) {
        events.push({ name: WORKFLOW, to: `sub-${i % S}`, payload: { n: i }, ...eventExtra?.(i) });
      }
      try {
        const res = await api(herald, 'POST', '/v1/events/trigger/bulk', { events });
        const ok = res.status === 201 && Array.isArray(res.json?.data) ? res.json.data.filter((d) => d.status === 'processed').length : 0;
        t.acked += ok;
        t.errors += events.length - ok;
        if (ok < events.length && t.problems.length < 3) t.problems.push(`${res.status} ${res.text.slice(0, 200)}`);
      } catch (err) {
        t.errors += events.length;
        if (t.problems.length < 3) t.problems.push(err.message);
      }
    }
  })).then(() => { t.finished = true; t.endAt = Date.now(); });
  return t;
}

// ----------------------------------------------------------------------- reference child
/** Starts reference.mjs on a job; resolves once it is ready, with go() and done(ms). */
export async function startReference(bench, job) {
  const jobPath = path.join(bench.tmp, `job-${job.provider}.json`);
  writeFileSync(jobPath, JSON.stringify(job));
  const child = spawn(process.execPath, [path.join(HERE, 'reference.mjs'), jobPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const events = [];
  let waiting = null;
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try { events.push(JSON.parse(line)); } catch { stderr += `\n${line}`; }
      waiting?.();
    }
  });
  child.on('exit', () => waiting?.());
  const nextEvent = async (name, ms) => {
    const until = Date.now() + ms;
    for (;;) {
      const e = events.find((x) => x.event === name);
      if (e) return e;
      if (child.exitCode !== null || Date.now() > until) throw new Error(`reference sender: no '${name}' (${stderr.slice(-800)})`);
      await new Promise((r) => { waiting = r; setTimeout(r, 100); });
      waiting = null;
    }
  };
  const ready = await nextEvent('ready', 30_000);
  return {
    child, ready, pid: child.pid,
    go: () => child.stdin.write('go\n'),
    isDone: () => events.some((e) => e.event === 'done'),
    done: (ms) => nextEvent('done', ms),
  };
}
