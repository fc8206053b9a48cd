// Loads the JSON Schemas (authored as YAML under schemas/) and resolves their $refs.
// Every generator and the validator start from this one bundle, so the schemas stay the
// single source of truth.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export type JsonSchema = { [keyword: string]: unknown };

export interface SchemaFile {
  /** The file's $id, e.g. "repository.schema.yaml". */
  id: string;
  schema: JsonSchema;
}

export interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  printerColumns: PrinterColumn[];
}

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
  description?: string;
}

export const GROUP = 'kopia.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Reads every *.schema.yaml in dir, sorted by name so output is stable. */
export function loadSchemaFiles(dir: string): SchemaFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.schema.yaml'))
    .sort()
    .map((f) => {
      const schema = parse(readFileSync(join(dir, f), 'utf8')) as JsonSchema;
      if (schema.$id !== f) throw new Error(`${f}: $id must equal the file name, found ${String(schema.$id)}`);
      return { id: f, schema };
    });
}

/** The files that describe a kind (they carry x-kopia-crd). */
export function kindFiles(files: SchemaFile[]): SchemaFile[] {
  return files.filter((f) => f.schema['x-kopia-crd'] !== undefined);
}

export function kindInfo(file: SchemaFile): KindInfo {
  const crd = file.schema['x-kopia-crd'] as Omit<KindInfo, 'kind'>;
  const kind = ((file.schema.properties as JsonSchema).kind as JsonSchema).const as string;
  return { kind, ...crd };
}

/** Splits "file#/definitions/X" into its file (default: the current one) and pointer. */
export function splitRef(ref: string, currentFile: string): { file: string; pointer: string } {
  const hash = ref.indexOf('#');
  const file = hash === 0 ? currentFile : hash < 0 ? ref : ref.slice(0, hash);
  const pointer = hash < 0 ? '' : ref.slice(hash + 1);
  return { file, pointer };
}

function resolvePointer(root: JsonSchema, pointer: string, where: string): JsonSchema {
  let node: unknown = root;
  for (const part of pointer.split('/').filter(Boolean)) {
    node = (node as JsonSchema | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) throw new Error(`unresolved $ref ${where}`);
  }
  return node as JsonSchema;
}

/**
 * Returns a copy of schema with every $ref replaced by the schema it points to.
 * The schemas have no recursive references; a cycle is reported rather than looped on.
 */
export function inlineRefs(schema: JsonSchema, currentFile: string, files: SchemaFile[], seen: string[] = []): JsonSchema {
  const byId = new Map(files.map((f) => [f.id, f.schema]));
  const walk = (node: unknown, file: string, stack: string[]): unknown => {
    if (Array.isArray(node)) return node.map((n) => walk(n, file, stack));
    if (node === null || typeof node !== 'object') return node;
    const obj = node as JsonSchema;
    if (typeof obj.$ref === 'string') {
      const { file: target, pointer } = splitRef(obj.$ref, file);
      const key = `${target}#${pointer}`;
      if (stack.includes(key)) throw new Error(`recursive $ref ${key}`);
      const root = byId.get(target);
      if (!root) throw new Error(`$ref to unknown schema file ${obj.$ref} (from ${file})`);
      const resolved = walk(resolvePointer(root, pointer, `${obj.$ref} from ${file}`), target, [...stack, key]) as JsonSchema;
      const { $ref: _ref, ...siblings } = obj;
      return { ...resolved, ...(walk(siblings, file, stack) as JsonSchema) };
    }
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(obj)) out[k] = walk(v, file, stack);
    return out;
  };
  return walk(schema, currentFile, seen) as JsonSchema;
}
