import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { validObjects, withField, type KindName } from '../../test-support/kopia-objects.js';
import { createValidator, formatProblem } from '../validator.js';
import { invalidCases, invalidObject } from './invalid-corpus.js';

const validator = createValidator();

describe('valid objects', () => {
  it.each(Object.keys(validObjects) as KindName[])('accepts a minimal %s', (kind) => {
    expect(validator.validate(validObjects[kind]())).toEqual([]);
  });

  const contract = parseAllDocuments(readFileSync('examples/api-contract.yaml', 'utf8'))
    .map((d) => d.toJS() as { apiVersion: string; kind: string } | null)
    .filter((o): o is { apiVersion: string; kind: string } => o?.apiVersion === 'kopia.io/v1alpha1');

  it('has every kind in the API contract', () => {
    expect(contract.map((o) => o.kind).sort()).toEqual(validator.kinds);
  });

  it.each(contract.map((o) => [o.kind, o] as const))('accepts the API contract %s as written', (_kind, obj) => {
    expect(validator.validate(obj).map(formatProblem)).toEqual([]);
  });
});

describe('invalid corpus', () => {
  it('holds at least 60 cases over every kind', () => {
    expect(invalidCases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(invalidCases.map((c) => c.kind)).size).toBe(validator.kinds.length);
  });

  it.each(invalidCases.map((c) => [c.name, c] as const))('rejects: %s', (_name, c) => {
    const problems = validator.validate(invalidObject(c));
    expect(problems).toContainEqual({
      path: c.path,
      message: expect.stringMatching(c.message),
    });
  });
});

describe('object envelope', () => {
  it('rejects another API version with a pointer to ours', () => {
    expect(
      validator.validate({
        ...validObjects.Backup(),
        apiVersion: 'kopia.io/v1',
      }),
    ).toEqual([{ path: 'apiVersion', message: 'must be kopia.io/v1alpha1' }]);
  });

  it('rejects an unknown kind and lists the known ones', () => {
    const [problem] = validator.validate({
      ...validObjects.Backup(),
      kind: 'Snapshot',
    });
    expect(problem.path).toBe('kind');
    expect(problem.message).toContain('Backup, BackupConfig');
  });

  it('requires a name or generateName', () => {
    expect(validator.validate(withField(validObjects.Backup(), 'metadata.generateName', undefined))).toContainEqual({
      path: 'metadata.name',
      message: expect.stringContaining('generateName'),
    });
  });

  it('reports every problem of an object, not just the first', () => {
    const obj = withField(withField(validObjects.BackupSchedule(), 'spec.cron', 'never'), 'spec.suspend', 'no');
    expect(
      validator
        .validate(obj)
        .map((p) => p.path)
        .sort(),
    ).toEqual(['spec.cron', 'spec.suspend']);
  });
});
