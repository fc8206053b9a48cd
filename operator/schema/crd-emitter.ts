// Turns a kind's JSON Schema into a CustomResourceDefinition with a structural schema.
// Pure: schema files in, CRD object out. The API server's rules for structural schemas
// decide the transforms: no $ref, no additionalProperties:false beside properties, no
// const, no titles or JSON-Schema-only keywords, metadata left to the API server.
import { API_VERSION, GROUP, VERSION, inlineRefs, kindInfo, type JsonSchema, type SchemaFile } from './schema-bundle.js';

/** Keywords the API server rejects or ignores in a CRD schema; we drop them. */
const DROPPED_KEYWORDS = new Set(['$schema', '$id', '$comment', 'title', 'definitions', 'examples', 'x-kopia-crd']);

/** Keywords a structural schema may carry (apiextensions JSONSchemaProps). */
export const CRD_KEYWORDS = new Set([
  'type',
  'format',
  'description',
  'default',
  'enum',
  'maximum',
  'minimum',
  'exclusiveMaximum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'multipleOf',
  'maxProperties',
  'minProperties',
  'required',
  'items',
  'properties',
  'additionalProperties',
  'allOf',
  'oneOf',
  'anyOf',
  'not',
  'nullable',
  'example',
  'x-kubernetes-validations',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
]);

/** Applies the structural transforms to an already inlined schema node. */
export function toStructural(node: JsonSchema): JsonSchema {
  // allOf with only sub-schemas that refer elsewhere is how a property adds a description or
  // default to a shared type; structural schemas want it flattened.
  let merged: JsonSchema = node;
  if (Array.isArray(node.allOf)) {
    const { allOf, ...rest } = node;
    merged = {};
    for (const part of allOf as JsonSchema[]) Object.assign(merged, part);
    Object.assign(merged, rest);
  }
  if (merged['x-kubernetes-int-or-string'] === true) {
    // anyOf [integer, string] with value checks inside is not structural; the API server
    // validates quantities itself, the offline validator keeps the full pattern.
    const out: JsonSchema = { 'x-kubernetes-int-or-string': true };
    if (merged.description) out.description = merged.description;
    return out;
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(merged)) {
    if (DROPPED_KEYWORDS.has(key)) continue;
    if (key === 'const') {
      out.enum = [value];
      continue;
    }
    if (key === 'additionalProperties') {
      if (value === false) continue; // pruning already drops unknown fields
      out.additionalProperties = value === true ? true : toStructural(value as JsonSchema);
      continue;
    }
    if (key === 'properties') {
      const props: JsonSchema = {};
      for (const [name, sub] of Object.entries(value as JsonSchema)) props[name] = toStructural(sub as JsonSchema);
      out.properties = props;
      continue;
    }
    if (key === 'items') {
      out.items = toStructural(value as JsonSchema);
      continue;
    }
    if (!CRD_KEYWORDS.has(key)) throw new Error(`keyword ${key} has no place in a CRD schema`);
    out[key] = value;
  }
  return out;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: JsonSchema;
}

export function emitCrd(file: SchemaFile, files: SchemaFile[]): CustomResourceDefinition {
  const info = kindInfo(file);
  const schema = toStructural(inlineRefs(file.schema, file.id, files));
  const props = schema.properties as JsonSchema;
  // The API server owns metadata (name and namespace rules); a CRD may only say "object".
  props.metadata = { type: 'object' };
  props.apiVersion = { type: 'string', description: `${API_VERSION}` };
  props.kind = { type: 'string', description: info.kind };
  delete schema.required;
  schema.required = ['spec'];
  if (typeof file.schema.description === 'string') schema.description = file.schema.description;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'kopia-operator', 'app.kubernetes.io/part-of': 'kopia-operator' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: ['kopia'],
      },
      scope: info.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}
