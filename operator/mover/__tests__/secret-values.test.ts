import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactSecrets } from '../../runtime/logger.js';
import { terminationMessage } from '../mover-contract.js';
import { secretEnvValues, secretFileValues } from '../secret-values.js';

describe('secret values', () => {
  let dir: string;
  beforeAll(() => {
    // The layout of a projected Secret volume: files behind ..data symlinks.
    dir = mkdtempSync(join(tmpdir(), 'secret-values-'));
    mkdirSync(join(dir, '..2026_11_27'), { recursive: true });
    mkdirSync(join(dir, '..2026_11_27', 'sftp'));
    writeFileSync(join(dir, '..2026_11_27', 'sftp', 'id_key'), '-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----\n');
    symlinkSync('..2026_11_27', join(dir, '..data'));
    symlinkSync('..data/sftp', join(dir, 'sftp'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads each mounted file whole and line by line, once', () => {
    const values = secretFileValues(dir);
    expect(values).toContain('AAAAB3NzaC1yc2EAAAADAQABAAABAQ');
    expect(values.filter((v) => v.includes('BEGIN KEY'))).toHaveLength(2); // the whole file and its first line
    expect(secretFileValues(join(dir, 'missing'))).toEqual([]);
  });

  it('takes only secret-looking environment variables', () => {
    expect(secretEnvValues({ KOPIA_PASSWORD: 'p4ss', AWS_ACCESS_KEY_ID: 'id', HOME: '/kopia', B2_KEY: 'k' })).toEqual(['p4ss', 'id', 'k']);
  });

  it('keeps file secrets and URL credentials out of the termination message', () => {
    const secrets = secretFileValues(dir);
    const message = terminationMessage(
      { ok: false, operation: 'verify', errorClass: 'Other', message: 'bad key AAAAB3NzaC1yc2EAAAADAQABAAABAQ at https://me:pw@dav/x' },
      secrets,
    );
    expect(message).not.toContain('AAAAB3NzaC1yc2EAAAADAQABAAABAQ');
    expect(message).not.toContain('me:pw');
    expect(message).toContain('https://[redacted]@dav/x');
  });

  it('replaces a longer secret whole even when it contains a shorter one', () => {
    expect(redactSecrets('x secretvalue-and-more y', ['secretvalue', 'secretvalue-and-more'])).toBe('x [redacted] y');
  });
});
