// kopia-operator lint: checks kopia.io manifests offline against the CRD schemas, for
// GitOps pre-commit hooks and CI. One line per problem: file, object, field path, cause.
// Exit 0 when clean, 1 when any manifest is invalid, 2 when the arguments are wrong.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { createValidator, formatProblem, type KopiaValidator } from '../validation/validator.js';

export interface LintResult {
  problems: string[];
  checked: number;
}

function yamlFiles(path: string): string[] {
  const st = statSync(path);
  if (st.isFile()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && e.name !== 'node_modules')
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) =>
      e.isDirectory() ? yamlFiles(join(path, e.name)) : ['.yaml', '.yml'].includes(extname(e.name)) ? [join(path, e.name)] : [],
    );
}

function objectName(doc: Record<string, unknown>, index: number): string {
  const meta = (doc.metadata ?? {}) as { name?: string; generateName?: string; namespace?: string };
  const name = meta.name ?? (meta.generateName ? `${meta.generateName}*` : `#${index}`);
  return `${String(doc.kind ?? '?')}/${meta.namespace ? `${meta.namespace}/` : ''}${name}`;
}

export function lintText(file: string, text: string, validator: KopiaValidator): LintResult {
  const problems: string[] = [];
  let checked = 0;
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      problems.push(`${file}: document ${index + 1}: YAML: ${doc.errors[0].message.split('\n')[0]}`);
      return;
    }
    const obj = doc.toJS() as Record<string, unknown> | null;
    if (!obj || typeof obj !== 'object' || typeof obj.apiVersion !== 'string' || !obj.apiVersion.startsWith('kopia.io/')) return;
    checked++;
    for (const p of validator.validate(obj)) problems.push(`${file}: ${objectName(obj, index + 1)}: ${formatProblem(p)}`);
  });
  return { problems, checked };
}

export function lintPaths(paths: string[], validator = createValidator()): LintResult {
  const result: LintResult = { problems: [], checked: 0 };
  for (const file of paths.flatMap(yamlFiles)) {
    const r = lintText(file, readFileSync(file, 'utf8'), validator);
    result.problems.push(...r.problems);
    result.checked += r.checked;
  }
  return result;
}

export function main(argv: string[]): number {
  const paths = argv.filter((a) => !a.startsWith('-'));
  if (paths.length === 0 || argv.includes('--help')) {
    console.error('usage: kopia-operator-lint PATH... (files or directories of YAML manifests)');
    return 2;
  }
  for (const p of paths) {
    try {
      statSync(p);
    } catch {
      console.error(`kopia-operator-lint: ${p}: no such file or directory`);
      return 2;
    }
  }
  const { problems, checked } = lintPaths(paths);
  for (const line of problems) console.log(line);
  console.error(`${checked} kopia.io object(s) checked, ${problems.length} problem(s)`);
  return problems.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
