import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_KEYWORDS, emitCrd, toStructural } from '../crd-emitter.js';
import { renderGeneratedFiles } from '../generated-files.js';
import { kindFiles, kindInfo, loadSchemaFiles, type JsonSchema } from '../schema-bundle.js';

const files = loadSchemaFiles('schemas');
const KINDS = ['Backup', 'BackupConfig', 'BackupSchedule', 'ClusterRepository', 'Maintenance', 'Repository', 'Restore'];

/** Every keyword used anywhere in a CRD schema, with the path it was found at. */
function keywords(node: unknown, path = ''): { key: string; path: string; value: unknown }[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => keywords(n, `${path}[${i}]`));
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node as JsonSchema).flatMap(([k, v]) => {
    if (k === 'properties') return Object.entries(v as JsonSchema).flatMap(([name, sub]) => keywords(sub, `${path}.${name}`));
    if (k === 'x-kubernetes-validations' || k === 'enum' || k === 'required' || k === 'default' || k === 'x-kubernetes-list-map-keys')
      return [{ key: k, path, value: v }];
    return [{ key: k, path, value: v }, ...keywords(v, `${path}/${k}`)];
  });
}

describe('CRD emitter', () => {
  const crds = kindFiles(files).map((f) => emitCrd(f, files));

  it('emits one CRD per kind', () => {
    expect(
      crds
        .map((c) => c.spec.names)
        .map((n) => (n as { kind: string }).kind)
        .sort(),
    ).toEqual(KINDS);
  });

  it.each(crds.map((c) => [c.metadata.name, c] as const))('%s uses only structural keywords', (_name, crd) => {
    const schema = ((crd.spec.versions as JsonSchema[])[0].schema as JsonSchema).openAPIV3Schema;
    const found = keywords(schema);
    expect(found.filter((k) => !CRD_KEYWORDS.has(k.key)).map((k) => `${k.path} ${k.key}`)).toEqual([]);
    expect(found.filter((k) => k.key === 'additionalProperties' && k.value === false)).toEqual([]);
    expect(JSON.stringify(schema)).not.toContain('$ref');
  });

  it.each(crds.map((c) => [c.metadata.name, c] as const))(
    '%s has status subresource, printer columns and the kopia category',
    (_n, crd) => {
      const version = (crd.spec.versions as JsonSchema[])[0];
      expect(version.subresources).toEqual({ status: {} });
      expect((version.additionalPrinterColumns as unknown[]).length).toBeGreaterThanOrEqual(3);
      expect((crd.spec.names as JsonSchema).categories).toEqual(['kopia']);
      expect(((crd.spec.names as JsonSchema).shortNames as string[]).length).toBe(1);
      const props = ((version.schema as JsonSchema).openAPIV3Schema as JsonSchema).properties as JsonSchema;
      expect(props.metadata).toEqual({ type: 'object' });
    },
  );

  it('turns const into enum, flattens allOf and reduces int-or-string to the marker', () => {
    expect(toStructural({ type: 'string', const: 'x' })).toEqual({ type: 'string', enum: ['x'] });
    expect(toStructural({ allOf: [{ type: 'string', pattern: '^a$' }], default: 'a', description: 'd' })).toEqual({
      type: 'string',
      pattern: '^a$',
      default: 'a',
      description: 'd',
    });
    expect(toStructural({ 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string', pattern: 'x' }] })).toEqual({
      'x-kubernetes-int-or-string': true,
    });
    expect(toStructural({ type: 'object', additionalProperties: false, properties: { a: { title: 'A', type: 'string' } } })).toEqual({
      type: 'object',
      properties: { a: { type: 'string' } },
    });
  });

  it('refuses a keyword a CRD cannot carry', () => {
    expect(() => toStructural({ type: 'object', patternProperties: {} })).toThrow(/patternProperties/);
  });

  it('keeps the safe defaults of the design', () => {
    const spec = (kind: string) => {
      const crd = crds.find((c) => (c.spec.names as JsonSchema).kind === kind)!;
      return (((crd.spec.versions as JsonSchema[])[0].schema as JsonSchema).openAPIV3Schema as JsonSchema).properties as JsonSchema;
    };
    const at = (root: JsonSchema, path: string) => path.split('.').reduce((n, p) => (n.properties as JsonSchema)[p] as JsonSchema, root);
    expect(at(spec('Backup').spec as JsonSchema, 'deletionPolicy').default).toBe('Retain');
    expect(at(spec('Restore').spec as JsonSchema, 'onMissingSnapshot').default).toBe('Fail');
    expect(at(spec('BackupSchedule').spec as JsonSchema, 'concurrencyPolicy').default).toBe('Forbid');
    expect(at(spec('BackupSchedule').spec as JsonSchema, 'runOnCreate').default).toBe(false);
    expect(at(spec('BackupConfig').spec as JsonSchema, 'mover.securityContext.runAsUser').default).toBe(65534);
  });

  it('names every kind with its plural and scope', () => {
    const scopes = Object.fromEntries(kindFiles(files).map((f) => [kindInfo(f).kind, kindInfo(f).scope]));
    expect(scopes.ClusterRepository).toBe('Cluster');
    expect(Object.values(scopes).filter((s) => s === 'Namespaced')).toHaveLength(6);
  });
});

describe('types emitter', () => {
  it('declares each kind and each shared type exactly once', async () => {
    const types = (await renderGeneratedFiles(files)).get('generated/types.ts')!;
    for (const name of [...KINDS, 'Identity', 'RepositoryReference', 'Retention', 'SecretKeySelector', 'MoverOptions', 'Condition']) {
      expect(types.match(new RegExp(`export (interface|type) ${name}\\b`, 'g'))).toHaveLength(1);
    }
    expect(types).not.toMatch(/export (interface|type) [A-Za-z]+\d\b/);
  });
});

describe('generated files', () => {
  it('match what make generate writes (run make generate when this fails)', async () => {
    for (const [path, content] of await renderGeneratedFiles(files)) {
      expect({ path, content: readFileSync(join(process.cwd(), path), 'utf8') }).toEqual({ path, content });
    }
  });
});
