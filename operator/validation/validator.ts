// Validates kopia.io objects against the same JSON Schemas that generate the CRDs.
// The operator reports problems as a condition; the lint command prints them per file.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { schemaFiles as bundledSchemaFiles } from '../../generated/schemas.js';
import { API_VERSION, kindFiles, kindInfo, type JsonSchema, type SchemaFile } from '../schema/schema-bundle.js';
import { failingRules, type CelRule } from './cel-rules.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
  formats: string[],
) => Ajv;

export interface ValidationProblem {
  /** Dotted field path such as spec.backend.s3.bucket; empty for the object itself. */
  path: string;
  message: string;
}

export interface KopiaValidator {
  kinds: string[];
  /** Problems with obj; an empty list means valid. Objects of other API groups are not ours to judge. */
  validate(obj: unknown): ValidationProblem[];
}

function dotted(instancePath: string): string {
  return instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function join(path: string, field: string): string {
  return path ? `${path}.${field}` : field;
}

function describe(err: ErrorObject): ValidationProblem {
  const path = dotted(err.instancePath);
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'required':
      return { path: join(path, String(p.missingProperty)), message: 'required field is missing' };
    case 'additionalProperties':
      return { path: join(path, String(p.additionalProperty)), message: 'unknown field' };
    case 'enum':
      return { path, message: `must be one of: ${(p.allowedValues as unknown[]).join(', ')}` };
    case 'const':
      return { path, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'pattern': {
      const described = (err.parentSchema as JsonSchema | undefined)?.description;
      return { path, message: `does not match ${String(p.pattern)}${described ? ` (${String(described)})` : ''}` };
    }
    case 'anyOf': {
      const s = err.parentSchema as JsonSchema | undefined;
      return { path, message: `is not a valid ${String(s?.title ?? 'value')}${s?.description ? `: ${String(s.description)}` : ''}` };
    }
    case 'x-kubernetes-validations':
      return { path: String(p.fieldPath ?? path), message: err.message ?? 'failed a validation rule' };
    default:
      return { path, message: err.message ?? err.keyword };
  }
}

/** ajv reports each failing branch of an anyOf too; the anyOf itself says it better. */
function withoutAnyOfBranches(errors: ErrorObject[]): ErrorObject[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath.replace(/\/anyOf$/, '/anyOf/')));
  return errors.filter((e) => e.keyword === 'anyOf' || ![...anyOfPaths].some((p) => e.schemaPath.startsWith(p)));
}

export function createValidator(files: SchemaFile[] = bundledSchemaFiles): KopiaValidator {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, verbose: true });
  addFormats(ajv, ['date-time']);
  for (const keyword of [
    'x-kopia-crd',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-map-type',
    'x-kubernetes-preserve-unknown-fields',
  ]) {
    ajv.addKeyword({ keyword });
  }
  ajv.addKeyword({
    keyword: 'x-kubernetes-validations',
    schemaType: 'array',
    errors: true,
    validate: function celKeyword(
      this: unknown,
      rules: CelRule[],
      data: unknown,
      _parent?: unknown,
      cxt?: { instancePath: string },
    ): boolean {
      const failed = failingRules(rules, data);
      const self = celKeyword as unknown as { errors: Partial<ErrorObject>[] };
      const base = dotted(cxt?.instancePath ?? '');
      self.errors = failed.map((r) => ({
        keyword: 'x-kubernetes-validations',
        message: r.message ?? `failed rule: ${r.rule}`,
        params: { rule: r.rule, fieldPath: r.fieldPath ? `${base}${r.fieldPath}` : base },
      }));
      return failed.length === 0;
    },
  });
  for (const f of files) ajv.addSchema(f.schema, f.id);

  const byKind = new Map<string, ValidateFunction>();
  for (const f of kindFiles(files)) byKind.set(kindInfo(f).kind, ajv.getSchema(f.id) as ValidateFunction);

  return {
    kinds: [...byKind.keys()].sort(),
    validate(obj: unknown): ValidationProblem[] {
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [{ path: '', message: 'not an object' }];
      const { apiVersion, kind } = obj as { apiVersion?: unknown; kind?: unknown };
      if (apiVersion !== API_VERSION) return [{ path: 'apiVersion', message: `must be ${API_VERSION}` }];
      const validateKind = byKind.get(String(kind));
      if (!validateKind)
        return [{ path: 'kind', message: `unknown kind ${String(kind)}; ${API_VERSION} has ${[...byKind.keys()].sort().join(', ')}` }];
      const seen = new Set<string>();
      const problems: ValidationProblem[] = [];
      const errors = validateKind(obj) ? [] : (validateKind.errors ?? []);
      for (const problem of withoutAnyOfBranches(errors).map(describe)) {
        const key = `${problem.path}\u0000${problem.message}`;
        if (!seen.has(key)) {
          seen.add(key);
          problems.push(problem);
        }
      }
      const meta = (obj as { metadata?: { name?: string; generateName?: string } }).metadata;
      if (meta && typeof meta === 'object' && !meta.name && !meta.generateName) {
        problems.push({ path: 'metadata.name', message: 'required field is missing (or set generateName)' });
      }
      return problems.sort((a, b) => a.path.localeCompare(b.path) || a.message.localeCompare(b.message));
    },
  };
}

export function formatProblem(p: ValidationProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}
