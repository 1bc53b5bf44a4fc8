// A throw-away PKI for the TLS mocks, made with the `openssl` CLI in a temp dir.
//
//   const pki = await makeTlsAuthority();
//   pki.ca.certPath          -> give Herald HERALD_CA_FILE=<this>
//   pki.server.{key, cert}   -> startApnsMock({tls: pki.server}) etc.
//   pki.issueClient({cn})    -> a client certificate signed by a second
//                               "client CA" (pki.clientCa), as PEM files and a
//                               password-protected .p12
//   pki.cleanup()            -> removes the directory (also done at exit)
//
// The server certificate covers IP 127.0.0.1 and DNS localhost. Keys are
// P-256 by default (fast to make); keyType 'rsa' gives RSA 2048 instead.
// Certificates are valid from now for `days` (default 2).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const liveDirs = new Set();
process.on('exit', () => {
  for (const dir of liveDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
});

async function openssl(args, cwd) {
  try {
    await run('openssl', args, { cwd, timeout: 20_000 });
  } catch (err) {
    if (err.code === 'ENOENT') {
      throw new Error('tls_authority: the openssl CLI is not installed (scripts/install-deps.sh --test installs it)');
    }
    throw new Error(`tls_authority: openssl ${args[0]} failed: ${err.stderr || err.message}`);
  }
}

const MIN_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

/**
 * Makes the test PKI. Options: {keyType: 'ec'|'rsa', days, dir}. Resolves
 * {dir, ca, server, clientCa, issueClient, cleanup}; ca/clientCa are
 * {certPath, keyPath, cert, key, subject}, server is {certPath, keyPath, cert, key}.
 */
export async function makeTlsAuthority({ keyType = 'ec', days = 2, dir } = {}) {
  const ownsDir = !dir;
  const root = dir ?? mkdtempSync(path.join(tmpdir(), 'herald-pki-'));
  if (ownsDir) liveDirs.add(root);
  const cnf = path.join(root, 'openssl.cnf');
  writeFileSync(cnf, MIN_CNF);

  const genKey = (file) => openssl(keyType === 'rsa'
    ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file]
    : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], root);
  const serial = () => `0x${randomBytes(8).toString('hex')}`;
  const files = (name) => ({ keyPath: path.join(root, `${name}.key`), certPath: path.join(root, `${name}.pem`) });
  const load = (f) => ({ ...f, key: readFileSync(f.keyPath, 'utf8'), cert: readFileSync(f.certPath, 'utf8') });

  async function makeCa(name, subject) {
    const f = files(name);
    await genKey(f.keyPath);
    await openssl(['req', '-x509', '-new', '-key', f.keyPath, '-out', f.certPath, '-days', String(days),
      '-subj', subject, '-config', cnf, '-extensions', 'v3_ca', '-set_serial', serial()], root);
    return { ...load(f), subject };
  }

  // Signs a new key's CSR with `issuer`, adding the extensions in `ext` (text).
  async function issue(name, subject, issuer, ext) {
    const f = files(name);
    const csr = path.join(root, `${name}.csr`);
    const extFile = path.join(root, `${name}.ext`);
    writeFileSync(extFile, ext);
    await genKey(f.keyPath);
    await openssl(['req', '-new', '-key', f.keyPath, '-out', csr, '-subj', subject, '-config', cnf], root);
    await openssl(['x509', '-req', '-in', csr, '-CA', issuer.certPath, '-CAkey', issuer.keyPath,
      '-set_serial', serial(), '-days', String(days), '-out', f.certPath, '-extfile', extFile], root);
    return load(f);
  }

  const [ca, clientCa] = await Promise.all([
    makeCa('ca', '/O=Herald Test/CN=Herald Test CA'),
    makeCa('client-ca', '/O=Herald Test/CN=Herald Test Client CA'),
  ]);
  const server = await issue('server', '/O=Herald Test/CN=127.0.0.1', ca, [
    'basicConstraints = CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = IP:127.0.0.1,DNS:localhost',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n'));

  let clients = 0;
  return {
    dir: root,
    ca,
    server,
    clientCa,
    /**
     * Issues a client certificate signed by the client CA.
     *   subject: an openssl -subj string (default '/O=Herald Test/CN=<cn>'),
     *   cn: common name (default 'herald-client-<n>'),
     *   uid: adds UID=<uid> to the subject (what Apple push certificates carry: the bundle id),
     *   password: for the .p12 (default random hex).
     * Resolves {certPath, keyPath, p12Path, cert, key, p12 (Buffer), password, subject}.
     */
    async issueClient({ cn, uid, subject, password } = {}) {
      clients += 1;
      const name = `client-${clients}`;
      const subj = subject ?? `/O=Herald Test${uid ? `/UID=${uid}` : ''}/CN=${cn ?? `herald-client-${clients}`}`;
      const pw = password ?? randomBytes(8).toString('hex');
      const c = await issue(name, subj, clientCa, [
        'basicConstraints = CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = clientAuth',
        'authorityKeyIdentifier = keyid',
        '',
      ].join('\n'));
      const p12Path = path.join(root, `${name}.p12`);
      await openssl(['pkcs12', '-export', '-in', c.certPath, '-inkey', c.keyPath, '-out', p12Path,
        '-name', name, '-passout', `pass:${pw}`], root);
      return { ...c, p12Path, p12: readFileSync(p12Path), password: pw, subject: subj };
    },
    cleanup() {
      if (!ownsDir) return;
      rmSync(root, { recursive: true, force: true });
      liveDirs.delete(root);
    },
  };
}

let shared;
/** One PKI per test process (made on first use, removed at exit). */
export function sharedTlsAuthority() {
  shared ??= makeTlsAuthority();
  return shared;
}
