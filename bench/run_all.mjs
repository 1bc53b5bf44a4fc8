#!/usr/bin/env node
// `make bench`: every benchmark of bench/README.md in one bounded run on loopback, each beside its
// reference, then one table. Writes bench/results/latest.md and bench/results/latest.json (the
// table, every part's full report and the machine: cores, CPU model, kernel, versions of Herald's
// libraries and of every reference).
//
//   footprint  binary size (and stripped), start-to-ready time, idle RSS        (this script)
//   ingest     durable triggers/s + ack p50/p99/p99.9 vs the same server's no-op route, while
//              delivering through the push-webhook path to the C++ sink      (bench/e2e/run.sh)
//   providers  APNs, FCM, Web Push, Expo: Herald vs the reference library vs the ceiling
//                                                                       (bench/providers/run.mjs)
//   growth     the APNs path again at 1 000 and 100 000 messages: deliveries/s, connections and
//              auth exchanges per 1 000 messages as the run grows     (bench/providers/run.mjs)
//   fanout     one trigger to a topic of N subscribers (1k, 10k, 100k, 1M) → the sink: wall time,
//              deliveries/s (cost growth), peak RSS                        (bench/fanout/run.mjs)
//
// Usage: node bench/run_all.mjs [--only footprint,ingest,providers,growth,fanout] [--quick]
//   --quick: small sizes (a smoke run of a minute or two; the figures mean little).
// Env:   BUILD_DIR (build) RESULTS_DIR (bench/results). Builds nothing (`make bench` does).
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free_port.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD_DIR = path.resolve(ROOT, process.env.BUILD_DIR ?? 'build');
const RESULTS_DIR = path.resolve(ROOT, process.env.RESULTS_DIR ?? 'bench/results');
const PARTS = ['footprint', 'ingest', 'providers', 'growth', 'fanout'];

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
if (flag('help') || flag('h')) {
  const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
  process.stdout.write(`${text.slice(0, text.findIndex((l) => !l.startsWith('//')))
    .map((l) => l.replace(/^\/\/ ?/, '')).join('\n')}\n`);
  process.exit(0);
}
const only = option('only', PARTS.join(',')).split(',');
for (const p of only) if (!PARTS.includes(p)) fail(`unknown part '${p}' (one of ${PARTS.join(', ')})`);
const quick = flag('quick');

function fail(msg) {
  process.stderr.write(`bench/run_all: ${msg}\n`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

// Runs a part's script with its output passed through; resolves with its exit code.
function runPart(cmd, args, env, seconds) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
    children.add(child);
    const timer = setTimeout(() => {
      process.stderr.write(`bench/run_all: ${path.basename(args[0] ?? cmd)} passed ${seconds} s; stopping it\n`);
      child.kill('SIGTERM');
    }, seconds * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

// ----------------------------------------------------------------------------- machine facts
function quiet(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}
const debVersion = (pkg) => quiet('dpkg-query', ['-W', '-f=${Version}', pkg]) || 'absent';
function npmVersion(pkg) {
  const file = path.join(ROOT, 'test/e2e/node_modules', pkg, 'package.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).version : 'absent';
}
function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  return {
    cores: os.cpus().length,
    cpu_model: (cpuinfo.match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? 'unknown',
    memory_gb: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    kernel: os.release(),
    os: (osRelease.match(/^PRETTY_NAME="?([^"\n]*)/m) ?? [])[1] ?? 'unknown',
    rev: quiet('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || 'unknown',
    herald_libraries: {
      'g++': quiet('g++', ['-dumpfullversion']),
      libcurl: debVersion('libcurl4-openssl-dev'),
      libnghttp2: debVersion('libnghttp2-dev'),
      openssl: debVersion('libssl-dev'),
      sqlite: debVersion('libsqlite3-dev'),
      mimalloc: debVersion('libmimalloc-dev'),
    },
    references: {
      node: process.version,
      '@parse/node-apn': npmVersion('@parse/node-apn'),
      'firebase-admin': npmVersion('firebase-admin'),
      'web-push': npmVersion('web-push'),
      'expo-server-sdk': npmVersion('expo-server-sdk'),
      h2load: (quiet('h2load', ['--version']).match(/nghttp2\/(\S+)/) ?? [])[1] ?? 'absent',
    },
  };
}

// -------------------------------------------------------------------------------- footprint
const rssKb = (pid) => Number((readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m) ?? [])[1] ?? 0);

// Three starts on a fresh data directory (migrations and key generation included): exec until
// GET /readyz answers 200, then the resident set after 3 s idle.
async function footprint() {
  const bin = path.join(BUILD_DIR, 'herald');
  const stripped = path.join(mkdtempSync(path.join(os.tmpdir(), 'herald-strip-')), 'herald');
  let strippedBytes = 0;
  try {
    execFileSync('strip', ['-o', stripped, bin]);
    strippedBytes = statSync(stripped).size;
  } catch { /* strip missing: leave 0 */ }
  rmSync(path.dirname(stripped), { recursive: true, force: true });
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-footprint-'));
    const port = await freePort();
    const t0 = process.hrtime.bigint();
    const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dir], {
      env: { ...process.env, HERALD_DEVELOPMENT_API_KEY: 'bench-footprint-key-0001', HERALD_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    children.add(child);
    try {
      let readyMs = 0;
      for (const end = Date.now() + 10_000; !readyMs;) {
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
        if (ok) readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
        else if (Date.now() > end) throw new Error('herald did not become ready in 10 s');
        else await sleep(2);
      }
      await sleep(3000);
      runs.push({ ready_ms: Math.round(readyMs), idle_rss_mb: Math.round(rssKb(child.pid) / 102.4) / 10 });
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      children.delete(child);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    binary_mb: Math.round(statSync(bin).size / 1e4) / 100,
    stripped_mb: Math.round(strippedBytes / 1e4) / 100,
    ready_ms: median(runs.map((r) => r.ready_ms)),
    idle_rss_mb: median(runs.map((r) => r.idle_rss_mb)),
    runs,
  };
}

// ------------------------------------------------------------------------------------ parts
const TMP = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-all-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));
const env = { BUILD_DIR, RESULTS_DIR };
const report = { when: new Date().toISOString(), machine: machine(), parts: {}, failed: [] };
const started = Date.now();

for (const part of only) {
  const t0 = Date.now();
  console.log(`\n=== ${part} ===`);
  const out = path.join(TMP, `${part}.json`);
  let code = 0;
  if (part === 'footprint') {
    report.parts.footprint = await footprint().catch((e) => ({ error: String(e.message ?? e) }));
    console.log(JSON.stringify(report.parts.footprint));
    if (report.parts.footprint.error) code = 1;
  } else if (part === 'ingest') {
    // 64 connections: enough requests in flight for intake, as a busy application keeps.
    code = await runPart('bash', ['bench/e2e/run.sh', '--connections', '64', '--requests', quick ? '5000' : '40000'],
      { ...env, RESULT_JSON: out }, 300);
    report.parts.ingest = readJson(out);
  } else if (part === 'providers') {
    code = await runPart('node', ['bench/providers/run.mjs', ...(quick ? ['--messages', '2000'] : [])],
      { ...env, RESULT_JSON: out }, 480);
    report.parts.providers = readJson(out);
  } else if (part === 'growth') {
    report.parts.growth = [];
    for (const n of quick ? [500, 5000] : [1000, 100000]) {
      const file = path.join(TMP, `growth-${n}.json`);
      code = (await runPart('node', ['bench/providers/run.mjs', '--providers', 'apns', '--messages', String(n)],
        { ...env, RESULT_JSON: file }, 300)) || code;
      const result = readJson(file);
      if (result) report.parts.growth.push(result);
    }
  } else if (part === 'fanout') {
    code = await runPart('node', ['bench/fanout/run.mjs', '--subscribers', quick ? '1000,10000' : '1000,10000,100000,1000000'],
      { ...env, RESULT_JSON: out, MAX_SECONDS: '600' }, 660);
    report.parts.fanout = readJson(out);
  }
  if (code !== 0 || !report.parts[part]) report.failed.push(part);
  console.log(`=== ${part}: ${code === 0 ? 'done' : `exit ${code}`} in ${Math.round((Date.now() - t0) / 1000)} s`);
}
report.seconds = Math.round((Date.now() - started) / 1000);

// ------------------------------------------------------------------------------------ table
// The issue's goal per provider: Herald ÷ reference, and for Web Push also a rate and a share of
// the crypto ceiling.
const PROVIDER_GOALS = {
  apns: { text: '≥ 3× reference', ok: (h, r) => h.deliveries_per_s >= 3 * r.deliveries_per_s },
  fcm: { text: '≥ 5× reference', ok: (h, r) => h.deliveries_per_s >= 5 * r.deliveries_per_s },
  'web-push': {
    text: '≥ 10× reference, ≥ 12 000/s, ≥ 0.6× ceiling',
    ok: (h, r, c) => h.deliveries_per_s >= 10 * r.deliveries_per_s && h.deliveries_per_s >= 12000
      && c?.per_s > 0 && h.deliveries_per_s >= 0.6 * c.per_s,
  },
};

const fmt = (v, digits = 0) => (v === undefined || v === null || Number.isNaN(v) ? '–'
  : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }).replace(/,/g, ' '));
const ratio = (a, b) => (a > 0 && b > 0 ? fmt(a / b, 2) : '–');
const met = (ok) => (ok === undefined ? '–' : ok ? 'yes' : '**no**');
const rows = [];
const row = (what, herald, reference, ratioText, ceiling, goal, ok) =>
  rows.push({ what, herald, reference, ratio: ratioText, ceiling, goal, met: met(ok) });

for (const line of providerRows(report.parts.providers)) rows.push(line);

const ing = report.parts.ingest;
if (ing) {
  row('Ingest: durable triggers/s (ack p50 / p99 / p99.9 ms), 64 connections, while delivering',
    `${fmt(ing.triggers_per_s)} (${ing.ack_p50_ms} / ${ing.ack_p99_ms} / ${ing.ack_p999_ms})`,
    `no-op route GET /healthz: ${fmt(ing.noop_per_s)} (${ing.noop_p50_ms} / ${ing.noop_p99_ms} / ${ing.noop_p999_ms})`,
    ratio(ing.triggers_per_s, ing.noop_per_s), '',
    '≥ 20 000/s, p99 < 20 ms', ing.triggers_per_s >= 20000 && ing.ack_p99_ms < 20);
  row('Push-webhook deliveries/s (same run)', fmt(ing.deliveries_per_s),
    `raw client → sink: ${fmt(ing.raw_per_s)}`, ratio(ing.deliveries_per_s, ing.raw_per_s), '', '', undefined);
}

const fan = report.parts.fanout;
const fanRows = Array.isArray(fan?.rows) ? fan.rows : [];
const million = fanRows.find((r) => r.subscribers >= 1_000_000);
if (million) {
  row('Fan-out: one trigger → topic of 1 000 000 → sink: wall time, peak RSS',
    `${fmt(million.seconds, 1)} s, ${million.peak_rss_mb} MB (import ${fmt(million.setup_s, 1)} s)`, '', '', '',
    '≤ 60 s, ≤ 500 MB', million.seconds <= 60 && million.peak_rss_mb <= 500);
}
if (fanRows.length) {
  const first = fanRows[0];
  const last = fanRows[fanRows.length - 1];
  row(`Cost growth: deliveries/s at ${fanRows.map((r) => fmt(r.subscribers)).join(' / ')} (CPU µs each)`,
    fanRows.map((r) => `${fmt(r.deliveries_per_s)} (${r.cpu_us_per_delivery})`).join(' / '), '',
    `${ratio(last.deliveries_per_s, first.deliveries_per_s)} largest ÷ smallest`, '', 'flat', undefined);
}

// Cost growth on the APNs path: the providers part's run and the growth part's runs by size.
const apnsRuns = [...(report.parts.growth ?? []), ...(report.parts.providers ? [report.parts.providers] : [])]
  .map((run) => (run.providers ?? []).find((pr) => pr.provider === 'apns')?.herald)
  .filter((h) => h?.deliveries_per_s)
  .sort((a, b) => a.messages - b.messages);
if (apnsRuns.length > 1) {
  row(`Cost growth, APNs: deliveries/s at ${apnsRuns.map((h) => fmt(h.messages)).join(' / ')} messages (connections opened, auth tokens, in all)`,
    apnsRuns.map((h) => `${fmt(h.deliveries_per_s)} (${h.connections}, ${h.auth})`).join(' / '), '',
    `${ratio(apnsRuns[apnsRuns.length - 1].deliveries_per_s, apnsRuns[0].deliveries_per_s)} largest ÷ smallest`, '',
    'flat; connections and auth do not grow', undefined);
}

const foot = report.parts.footprint;
if (foot && !foot.error) {
  row('Footprint: idle RSS, start-to-ready, binary (stripped)',
    `${foot.idle_rss_mb} MB, ${foot.ready_ms} ms, ${foot.binary_mb} MB (${foot.stripped_mb} MB)`, '', '', '',
    'idle ≤ 30 MB', foot.idle_rss_mb <= 30);
}

// The provider rows come from bench/providers/run.mjs's RESULT_JSON (see its header).
function providerRows(p) {
  if (!p || !Array.isArray(p.providers)) return [];
  const out = [];
  for (const pr of p.providers) {
    const h = pr.herald ?? {};
    const r = pr.reference ?? {};
    const c = pr.ceiling ?? {};
    out.push({
      what: `${pr.label ?? pr.provider}: deliveries/s (connections, auth per 1k; CPU µs/msg)`,
      herald: `${fmt(h.deliveries_per_s)} (${fmt(h.connections_per_1k, 2)}, ${fmt(h.auth_per_1k, 2)}; ${fmt(h.cpu_us_per_message)})`,
      reference: r.deliveries_per_s ? `${r.library}: ${fmt(r.deliveries_per_s)} (${fmt(r.connections_per_1k, 2)}, ${fmt(r.auth_per_1k, 2)}; ${fmt(r.cpu_us_per_message)})` : '',
      ratio: ratio(h.deliveries_per_s, r.deliveries_per_s),
      ceiling: c.per_s ? `${c.name}: ${fmt(c.per_s)} (Herald ${ratio(h.deliveries_per_s, c.per_s)})` : '',
      goal: PROVIDER_GOALS[pr.provider]?.text ?? '',
      met: met(PROVIDER_GOALS[pr.provider] && h.deliveries_per_s && r.deliveries_per_s
        ? PROVIDER_GOALS[pr.provider].ok(h, r, c) : undefined),
    });
  }
  return out;
}

const m = report.machine;
const md = [
  `# Benchmarks: latest run`,
  '',
  `\`make bench\` (node bench/run_all.mjs${quick ? ' --quick' : ''}) on ${m.rev}, ${report.when}, ${report.seconds} s.`,
  `Machine: ${m.cores} cores, ${m.cpu_model}, ${m.memory_gb} GB, ${m.os}, Linux ${m.kernel}.`,
  `Herald's libraries: ${Object.entries(m.herald_libraries).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
  `References: ${Object.entries(m.references).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
  '',
  '| Row | Herald | Reference | Herald ÷ reference | Ceiling | Goal | Met |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.what} | ${r.herald} | ${r.reference} | ${r.ratio} | ${r.ceiling} | ${r.goal} | ${r.met} |`),
  '',
  report.failed.length ? `Parts that failed: ${report.failed.join(', ')} (their rows are missing or partial).` : 'Every part completed.',
  '',
].join('\n');
report.table = rows;
mkdirSync(RESULTS_DIR, { recursive: true });
writeFileSync(path.join(RESULTS_DIR, 'latest.md'), md);
writeFileSync(path.join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(`\n${md}`);
console.log(`wrote ${path.relative(ROOT, path.join(RESULTS_DIR, 'latest.md'))} and latest.json`);
process.exit(report.failed.length ? 1 : 0);
