import type { Backend } from '../../../generated/types.js';
import {
  canonicalPath,
  connectCommand,
  createCommand,
  OPERATOR_PIN,
  policyChanges,
  policyDeleteCommand,
  policyImportCommand,
  policySetCommand,
  snapshotCreateCommand,
  snapshotDeleteCommand,
  snapshotListCommand,
  snapshotPinCommand,
  sourceOf,
  storageArgs,
} from '../kopia-command.js';
import type { KopiaPolicy } from '../kopia-json.js';
import { MOVER_PATHS } from '../mover-contract.js';

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

describe('sources', () => {
  it('names a source user@host:path with the path cleaned as kopia cleans it', () => {
    expect(sourceOf({ username: 'app', hostname: 'media', path: '/data' })).toBe('app@media:/data');
    expect(sourceOf({ username: 'app', hostname: 'media', path: '/data/./x/../' })).toBe('app@media:/data');
    expect(canonicalPath('/')).toBe('/');
  });

  it('refuses a relative path (kopia would resolve it against its working directory)', () => {
    expect(() => sourceOf({ username: 'a', hostname: 'b', path: 'data' })).toThrow('absolute');
  });
});

describe('writer commands never run automatic maintenance; readers need not say so', () => {
  const source = 'app@media:/data';
  const writers = {
    'policy set': policySetCommand(source, ['--keep-latest=3']),
    'policy import': policyImportCommand(source, '/kopia/p.json'),
    'policy delete': policyDeleteCommand(source),
    'snapshot create': snapshotCreateCommand({ username: 'app', hostname: 'media', path: '/data' }, {}, false),
    'snapshot delete': snapshotDeleteCommand(['0123456789abcdef']),
    'snapshot pin': snapshotPinCommand(['0123456789abcdef'], 'add'),
  };
  it.each(Object.entries(writers))('%s', (_name, argv) => {
    expect(argv).toContain('--no-auto-maintenance');
    expect(argv).toContain('--config-file=/kopia/config/repository.config');
  });

  it('lists one source as JSON', () => {
    expect(snapshotListCommand(source).slice(0, 4)).toEqual(['snapshot', 'list', source, '--json']);
  });
});

describe('policy changes', () => {
  const unchanged: KopiaPolicy = {
    retention: { keepLatest: 5, keepDaily: 7, ignoreIdenticalSnapshots: false },
    files: { ignore: ['*.tmp', 'cache/'], oneFileSystem: true },
    compression: { compressorName: 'zstd' },
  };
  const wanted = {
    retention: { keepLatest: 5, keepDaily: 7 },
    compression: 'zstd',
    ignore: ['cache/', '*.tmp'],
    oneFileSystem: true,
  };

  it('are none when the defined policy already is the requested one (no write)', () => {
    expect(policyChanges(wanted, unchanged)).toEqual([]);
  });

  it('set every requested value on a source without a policy; unset ones inherit, identical snapshots are saved', () => {
    expect(
      policyChanges(
        { retention: { keepLatest: 3, keepWeekly: 0 }, compression: 's2-default', ignore: ['a'], ignoreCacheDirs: true },
        undefined,
      ),
    ).toEqual([
      '--keep-latest=3',
      '--keep-weekly=0',
      '--ignore-identical-snapshots=false',
      '--compression=s2-default',
      '--add-ignore=a',
      '--ignore-cache-dirs=true',
    ]);
  });

  it('reset what the request no longer says to inherit', () => {
    expect(policyChanges({}, unchanged)).toEqual([
      '--keep-latest=inherit',
      '--keep-daily=inherit',
      '--compression=inherit',
      '--remove-ignore=*.tmp',
      '--remove-ignore=cache/',
      '--one-file-system=inherit',
    ]);
  });

  it('replace the ignore list exactly with adds and removes in one call (kopia drops adds given with --clear-ignore)', () => {
    const changes = policyChanges({ ...wanted, ignore: ['cache/', 'new/**'] }, unchanged);
    expect(changes).toEqual(['--add-ignore=new/**', '--remove-ignore=*.tmp']);
    expect(changes.join(' ')).not.toContain('--clear-ignore');
  });

  it('turn a boolean off explicitly rather than inheriting', () => {
    expect(policyChanges({ ...wanted, oneFileSystem: false }, unchanged)).toEqual(['--one-file-system=false']);
  });
});

describe('snapshot create', () => {
  const app = { username: 'app', hostname: 'media', path: '/data' };

  it('snapshots the data volume as the source with the cleaned path, with tags as key:value and JSON output', () => {
    const argv = snapshotCreateCommand({ ...app, path: '/data/' }, { app: 'media', 'mover-uid': '65534', note: 'a:b' }, false);
    expect(argv.slice(0, 5)).toEqual(['snapshot', 'create', '/kopia/data', '--override-source=app@media:/data', '--json']);
    expect(argv).toEqual(expect.arrayContaining(['--tags=app:media', '--tags=mover-uid:65534', '--tags=note:a:b']));
    expect(argv.some((a) => a.startsWith('--pin'))).toBe(false);
  });

  it.each(['/app', '/etc', '/usr/local/bin', '/data/../app/'])(
    'reads the data volume at its fixed path whatever the identity path (%s): that path only names the source',
    (path) => {
      const argv = snapshotCreateCommand({ ...app, path }, {}, false);
      expect(argv.slice(0, 4)).toEqual(['snapshot', 'create', MOVER_PATHS.data, `--override-source=app@media:${canonicalPath(path)}`]);
      expect(argv.filter((a) => a.startsWith('/'))).toEqual([MOVER_PATHS.data]);
    },
  );

  it('pins at creation, so the id stays and retention at save already sees the pin', () => {
    expect(snapshotCreateCommand(app, {}, true)).toContain(`--pin=${OPERATOR_PIN}`);
  });

  it('records the start time the retention prediction used, in whole UTC seconds', () => {
    expect(snapshotCreateCommand(app, {}, false, new Date('2026-11-27T03:04:05.678Z'))).toContain('--start-time=2026-11-27 03:04:05 UTC');
  });

  it.each(['', 'a:b'])('refuses the tag key %j', (key) => {
    expect(() => snapshotCreateCommand(app, { [key]: 'v' }, false)).toThrow('invalid tag key');
  });
});

describe('snapshot delete and pin', () => {
  const ids = Array.from({ length: 15 }, (_, i) => i.toString(16).padStart(32, '0'));

  it('deletes many ids in one call, for real', () => {
    const argv = snapshotDeleteCommand(ids);
    expect(argv.slice(0, 2)).toEqual(['snapshot', 'delete']);
    expect(argv.slice(2, 17)).toEqual(ids);
    expect(argv).toContain('--delete');
  });

  it('adds or removes the operator pin on many ids in one call', () => {
    expect(snapshotPinCommand(ids.slice(0, 2), 'remove')).toEqual(expect.arrayContaining([...ids.slice(0, 2), `--remove=${OPERATOR_PIN}`]));
  });

  it.each([[[]], [['--all-snapshots-for-source']], [['k1234567890abcdef']]])('refuses %j', (bad) => {
    expect(() => snapshotDeleteCommand(bad)).toThrow();
    expect(() => snapshotPinCommand(bad, 'add')).toThrow();
  });
});
