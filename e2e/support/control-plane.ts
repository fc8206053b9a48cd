// A real Kubernetes control plane for tests and the local demo: etcd, kube-apiserver and
// kube-controller-manager built from their Go modules (scripts/build-test-binaries.sh),
// with certificates, RBAC, service-account keys and an admin kubeconfig. No kubelet or
// scheduler: the node agent (node-agent.ts) plays those parts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, startGuarded, type GuardedProcess } from './processes.js';

export const KUBE_CONTROLLERS = [
  'job-controller',
  'garbage-collector-controller',
  'persistentvolume-binder-controller',
  'persistentvolumeclaim-protection-controller',
  'persistentvolume-protection-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'pod-garbage-collector-controller',
];

export interface ControlPlane {
  dir: string;
  binDir: string;
  kubeconfig: string;
  apiServerUrl: string;
  processes: GuardedProcess[];
  stop(): Promise<void>;
}

const repoRoot = resolve(new URL('../..', import.meta.url).pathname);

/** Builds missing binaries (cached outside the checkout) and returns their directory. */
export function ensureTestBinaries(targets: string[] = []): string {
  const out = execFileSync('bash', [join(repoRoot, 'scripts/build-test-binaries.sh'), ...targets], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  return out.trim().split('\n').pop()!;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** CA, API server serving certificate, admin client certificate and service-account keys. */
function makeCertificates(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=kopia-operator-test-ca']);
  const issue = (name: string, subject: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '7',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ]);
  };
  issue(
    'apiserver',
    '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n',
  );
  issue('admin', '/O=system:masters/CN=kopia-test-admin', 'extendedKeyUsage=clientAuth\n');
  openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

function kubeconfigYaml(dir: string, server: string): string {
  const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "${server}", certificate-authority-data: ${b64('ca.crt')}}
users:
- name: admin
  user: {client-certificate-data: ${b64('admin.crt')}, client-key-data: ${b64('admin.key')}}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
`;
}

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((res) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url, { ...options, timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', () => res({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  proc: GuardedProcess | undefined,
  logFile: string,
  timeoutMs = 60000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc?.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (await check()) return;
    if (exited) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  throw new Error(`${what} did not become ready${exited ? ' (process exited)' : ''}; last log lines of ${logFile}:\n${tail}`);
}

export interface StartOptions {
  /** Directory for data, certificates and logs; a fresh temporary one by default. */
  dir?: string;
  log?: (line: string) => void;
}

/** Attempts when a port picked free was taken before etcd or the API server bound it (other test worlds start beside this one). */
const PORT_RACE_ATTEMPTS = 3;

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startControlPlaneOnce(opts);
    } catch (e) {
      if (attempt >= PORT_RACE_ATTEMPTS || !/address already in use/.test((e as Error).message)) throw e;
      opts.log?.(`a port was taken before it was bound; starting again (attempt ${attempt + 1})`);
      if (opts.dir) rmSync(join(opts.dir, 'etcd'), { recursive: true, force: true });
    }
  }
}

async function startControlPlaneOnce(opts: StartOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const binDir = ensureTestBinaries(['etcd', 'kube']);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'kopia-cp-'));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const processes: GuardedProcess[] = [];
  const stop = async () => {
    for (const p of [...processes].reverse()) await p.stop();
  };
  try {
    makeCertificates(dir);
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];

    const etcdLog = join(dir, 'logs/etcd.log');
    const etcd = startGuarded(
      'etcd',
      join(binDir, 'etcd'),
      [
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      etcdLog,
    );
    processes.push(etcd);
    await waitFor('etcd', async () => (await get(`http://127.0.0.1:${etcdPort}/health`)).status === 200, etcd, etcdLog);
    log(`etcd ready on ${etcdPort}`);

    const apiLog = join(dir, 'logs/kube-apiserver.log');
    const api = startGuarded(
      'kube-apiserver',
      join(binDir, 'kube-apiserver'),
      [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
        `--client-ca-file=${join(dir, 'ca.crt')}`,
        `--secure-port=${apiPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--authorization-mode=RBAC',
        `--service-account-issuer=https://kubernetes.default.svc`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        // Pods here are run by the node agent, which mounts no service-account tokens.
        '--disable-admission-plugins=ServiceAccount',
        // As on clusters that enable it (OpenShift does): an owner reference with
        // blockOwnerDeletion needs `update` on the owner's finalizers, so RBAC missing it fails here.
        '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
        '--endpoint-reconciler-type=none',
        '--v=1',
      ],
      apiLog,
    );
    processes.push(api);
    const server = `https://127.0.0.1:${apiPort}`;
    const tls = {
      ca: readFileSync(join(dir, 'ca.crt')),
      cert: readFileSync(join(dir, 'admin.crt')),
      key: readFileSync(join(dir, 'admin.key')),
    };
    await waitFor('kube-apiserver', async () => (await get(`${server}/readyz`, tls)).status === 200, api, apiLog, 90000);
    log(`kube-apiserver ready at ${server}`);

    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(dir, server), { mode: 0o600 });

    const kcmLog = join(dir, 'logs/kube-controller-manager.log');
    const kcm = startGuarded(
      'kube-controller-manager',
      join(binDir, 'kube-controller-manager'),
      [
        `--kubeconfig=${kubeconfig}`,
        '--leader-elect=false',
        `--controllers=${KUBE_CONTROLLERS.join(',')}`,
        `--service-account-private-key-file=${join(dir, 'sa.key')}`,
        `--root-ca-file=${join(dir, 'ca.crt')}`,
        '--secure-port=0',
        '--use-service-account-credentials=false',
        '--concurrent-job-syncs=10',
        '--v=1',
      ],
      kcmLog,
    );
    processes.push(kcm);
    // The service-account controller creating "default" proves the controllers run.
    await waitFor(
      'kube-controller-manager',
      async () => (await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)).status === 200,
      kcm,
      kcmLog,
    );
    log('kube-controller-manager running');
    return { dir, binDir, kubeconfig, apiServerUrl: server, processes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Stops the processes and removes the data directory. */
export async function destroyControlPlane(cp: ControlPlane): Promise<void> {
  await cp.stop();
  rmSync(cp.dir, { recursive: true, force: true });
}
