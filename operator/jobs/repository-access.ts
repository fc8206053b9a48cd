// Which Secret keys a repository needs and how each reaches the mover: as an environment
// variable or as a file under /etc/kopia-secrets. Pure: the operator checks the Secrets
// exist, the Job builder turns these into secretKeyRef env and Secret volumes, so no
// secret value ever appears in a Job spec.
import type { Backend, SecretKeySelector, SecretReference } from '../../generated/types.js';
import { SECRET_FILES } from '../mover/mover-contract.js';

export interface SecretKeyUse {
  /** The Secret (namespace only for ClusterRepository references). */
  secret: { name: string; namespace?: string };
  key: string;
  optional: boolean;
  /** Delivered as this environment variable, or as this file (relative to the secrets mount). */
  as: { env: string } | { file: string };
}

export interface RepositorySecrets {
  passwordSecretRef: SecretKeySelector;
  backend: Backend;
}

function fromRef(ref: SecretReference, keys: [key: string, env: string, optional: boolean][]): SecretKeyUse[] {
  return keys.map(([key, env, optional]) => ({ secret: { name: ref.name, namespace: ref.namespace }, key, optional, as: { env } }));
}

function fileFrom(sel: SecretKeySelector, file: string): SecretKeyUse {
  return { secret: { name: sel.name, namespace: sel.namespace }, key: sel.key, optional: false, as: { file } };
}

export function secretKeyUses(spec: RepositorySecrets): SecretKeyUse[] {
  const uses: SecretKeyUse[] = [fileless(spec.passwordSecretRef, 'KOPIA_PASSWORD')];
  const b = spec.backend;
  if (b.s3?.credentialsSecretRef) {
    uses.push(
      ...fromRef(b.s3.credentialsSecretRef, [
        ['AWS_ACCESS_KEY_ID', 'AWS_ACCESS_KEY_ID', false],
        ['AWS_SECRET_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY', false],
        ['AWS_SESSION_TOKEN', 'AWS_SESSION_TOKEN', true],
      ]),
    );
  }
  if (b.s3?.tls?.caBundleSecretRef) uses.push(fileFrom(b.s3.tls.caBundleSecretRef, SECRET_FILES.caBundle));
  if (b.b2)
    uses.push(
      ...fromRef(b.b2.credentialsSecretRef, [
        ['B2_KEY_ID', 'B2_KEY_ID', false],
        ['B2_KEY', 'B2_KEY', false],
      ]),
    );
  if (b.azure) {
    uses.push(
      ...fromRef(b.azure.credentialsSecretRef, [
        ['AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_ACCOUNT', false],
        ['AZURE_STORAGE_KEY', 'AZURE_STORAGE_KEY', true],
        ['AZURE_STORAGE_SAS_TOKEN', 'AZURE_STORAGE_SAS_TOKEN', true],
      ]),
    );
  }
  if (b.gcs) {
    const ref = b.gcs.credentialsSecretRef;
    uses.push({
      secret: { name: ref.name, namespace: ref.namespace },
      key: 'GOOGLE_APPLICATION_CREDENTIALS',
      optional: false,
      as: { file: SECRET_FILES.gcsCredentials },
    });
  }
  if (b.sftp) {
    uses.push(fileFrom(b.sftp.knownHostsSecretRef, SECRET_FILES.knownHosts));
    const ref = b.sftp.credentialsSecretRef;
    if (ref)
      uses.push({
        secret: { name: ref.name, namespace: ref.namespace },
        key: 'SFTP_KEY',
        optional: false,
        as: { file: SECRET_FILES.sftpKey },
      });
  }
  if (b.webdav?.credentialsSecretRef) {
    uses.push(
      ...fromRef(b.webdav.credentialsSecretRef, [
        ['WEBDAV_USERNAME', 'KOPIA_WEBDAV_USERNAME', false],
        ['WEBDAV_PASSWORD', 'KOPIA_WEBDAV_PASSWORD', false],
      ]),
    );
  }
  if (b.rclone) uses.push(fileFrom(b.rclone.configSecretRef, SECRET_FILES.rcloneConfig));
  return uses;
}

function fileless(sel: SecretKeySelector, env: string): SecretKeyUse {
  return { secret: { name: sel.name, namespace: sel.namespace }, key: sel.key, optional: false, as: { env } };
}

/** The key a use takes in a materialised copy Secret (ClusterRepository): its env name or file path. */
export function copyKey(use: SecretKeyUse): string {
  return 'env' in use.as ? use.as.env : `file.${use.as.file.replace(/[^-._a-zA-Z0-9]/g, '_')}`;
}

/** The same uses, read from one copy Secret in the Job's namespace instead of the originals. */
export function usesFromCopy(uses: SecretKeyUse[], copyName: string): SecretKeyUse[] {
  return uses.map((u) => ({ ...u, secret: { name: copyName }, key: copyKey(u) }));
}
