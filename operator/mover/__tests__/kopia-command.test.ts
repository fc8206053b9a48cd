import type { Backend } from '../../../generated/types.js';
import { connectCommand, createCommand, storageArgs } from '../kopia-command.js';

const cases: { backend: string; given: Backend; expect: string[] }[] = [
  {
    backend: 'filesystem',
    given: { filesystem: { path: '/cluster-a', volume: { persistentVolumeClaim: { claimName: 'nas' } } } },
    expect: ['filesystem', '--path=/repository/cluster-a'],
  },
  {
    backend: 'filesystem at the volume root',
    given: { filesystem: { path: '/', volume: { nfs: { server: 'nas', path: '/export' } } } },
    expect: ['filesystem', '--path=/repository'],
  },
  {
    backend: 's3',
    given: {
      s3: {
        bucket: 'backups',
        prefix: 'cluster-a',
        endpoint: 'minio.storage.svc:9000',
        region: 'us-east-1',
        tls: { disabled: true },
        credentialsSecretRef: { name: 'c' },
      },
    },
    expect: ['s3', '--bucket=backups', '--prefix=cluster-a/', '--endpoint=minio.storage.svc:9000', '--region=us-east-1', '--disable-tls'],
  },
  {
    backend: 's3 with a CA bundle',
    given: { s3: { bucket: 'backups', prefix: 'x/', tls: { caBundleSecretRef: { name: 'ca', key: 'ca.crt' } } } },
    expect: ['s3', '--bucket=backups', '--prefix=x/', '--root-ca-pem-path=/etc/kopia-secrets/ca-bundle/ca.pem'],
  },
  {
    backend: 'b2',
    given: { b2: { bucket: 'b', prefix: 'p', credentialsSecretRef: { name: 'c' } } },
    expect: ['b2', '--bucket=b', '--prefix=p/'],
  },
  {
    backend: 'azure',
    given: { azure: { container: 'kopia', storageDomain: 'blob.core.example', credentialsSecretRef: { name: 'c' } } },
    expect: ['azure', '--container=kopia', '--storage-domain=blob.core.example'],
  },
  {
    backend: 'gcs',
    given: { gcs: { bucket: 'g-bucket', credentialsSecretRef: { name: 'c' } } },
    expect: ['gcs', '--bucket=g-bucket', '--credentials-file=/etc/kopia-secrets/gcs/credentials.json'],
  },
  {
    backend: 'sftp',
    given: {
      sftp: {
        host: 'nas',
        port: 2222,
        username: 'kopia',
        path: '/srv/kopia',
        credentialsSecretRef: { name: 'c' },
        knownHostsSecretRef: { name: 'k', key: 'known_hosts' },
      },
    },
    expect: [
      'sftp',
      '--host=nas',
      '--port=2222',
      '--username=kopia',
      '--path=/srv/kopia',
      '--known-hosts=/etc/kopia-secrets/sftp/known_hosts',
      '--keyfile=/etc/kopia-secrets/sftp/id_key',
    ],
  },
  { backend: 'webdav', given: { webdav: { url: 'https://dav.example/kopia' } }, expect: ['webdav', '--url=https://dav.example/kopia'] },
  {
    backend: 'rclone',
    given: { rclone: { remotePath: 'remote:kopia', configSecretRef: { name: 'r', key: 'rclone.conf' } } },
    expect: ['rclone', '--remote-path=remote:kopia', '--rclone-args=--config=/etc/kopia-secrets/rclone/rclone.conf'],
  },
];

describe('storage arguments per backend', () => {
  it.each(cases.map((c) => [c.backend, c] as const))('%s', (_name, c) => {
    expect(storageArgs(c.given)).toEqual(c.expect);
  });

  it('refuses an object with no backend', () => {
    expect(() => storageArgs({})).toThrow('no backend');
  });
});

describe('connect and create', () => {
  const backend: Backend = { s3: { bucket: 'backups', credentialsSecretRef: { name: 'c' } } };

  it('pins the identity, uses scratch config and never persists credentials', () => {
    const argv = connectCommand(backend, { username: 'app', hostname: 'media', cache: { contentCacheSizeMB: 500 } });
    expect(argv.slice(0, 3)).toEqual(['repository', 'connect', 's3']);
    expect(argv).toEqual(
      expect.arrayContaining([
        '--override-username=app',
        '--override-hostname=media',
        '--no-persist-credentials',
        '--no-check-for-updates',
        '--config-file=/kopia/config/repository.config',
        '--cache-directory=/cache',
        '--content-cache-size-mb=500',
      ]),
    );
  });

  it('passes the format choices to create', () => {
    const argv = createCommand(
      backend,
      { enabled: true, encryption: 'CHACHA20-POLY1305-HMAC-SHA256', hash: 'BLAKE3-256', splitter: 'FIXED-4M' },
      { username: 'u', hostname: 'h' },
    );
    expect(argv.slice(0, 3)).toEqual(['repository', 'create', 's3']);
    expect(argv).toEqual(
      expect.arrayContaining(['--encryption=CHACHA20-POLY1305-HMAC-SHA256', '--block-hash=BLAKE3-256', '--object-splitter=FIXED-4M']),
    );
  });

  it('never carries a credential on the command line', () => {
    for (const c of cases) {
      const argv = connectCommand(c.given, { username: 'u', hostname: 'h' }).join(' ');
      expect(argv).not.toMatch(/password|secret-access-key|--key=|--access-key|storage-key|sas-token/i);
    }
  });
});
