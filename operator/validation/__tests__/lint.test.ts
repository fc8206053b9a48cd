import { jest } from '@jest/globals';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lintPaths, main } from '../../cli/lint.js';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'lint-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const goodRestore = `apiVersion: kopia.io/v1alpha1
kind: Restore
metadata: {name: app-data, namespace: apps}
spec:
  source: {fromConfig: {name: app}}
  target: {populator: {}}
`;

describe('lint command', () => {
  it('passes the API contract examples', () => {
    const r = lintPaths(['examples']);
    expect(r.problems).toEqual([]);
    // api-contract.yaml's 7 kopia.io objects and the GitOps media example's 4 (gitops/media/: its Namespace, Secret and claims are not ours to check).
    expect(r.checked).toBe(11);
  });

  it('names file, object and field for each problem, walking subdirectories', () => {
    const dir = tree({
      'apps/ok.yaml': goodRestore,
      'apps/nested/broken.yaml': `---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
---
apiVersion: kopia.io/v1alpha1
kind: Restore
metadata: {name: broken, namespace: apps}
spec:
  source: {fromConfig: {name: app}, backupRef: {name: b}}
  target: {populator: {}}
  onMissingSnapshot: Maybe
`,
      'README.md': 'not yaml: [',
    });
    const r = lintPaths([dir]);
    expect(r.checked).toBe(2);
    expect(r.problems).toEqual([
      `${join(dir, 'apps/nested/broken.yaml')}: Restore/apps/broken: spec.onMissingSnapshot: must be one of: Fail, Continue`,
      `${join(dir, 'apps/nested/broken.yaml')}: Restore/apps/broken: spec.source: exactly one source must be set (backupRef, fromConfig or snapshot)`,
    ]);
  });

  it('reports a YAML syntax error as a problem', () => {
    const dir = tree({ 'bad.yaml': 'kind: [unclosed\n' });
    expect(lintPaths([dir]).problems[0]).toMatch(/bad\.yaml: document 1: YAML: /);
  });

  it('exits 0 when clean, 1 on problems, 2 on a missing path', () => {
    const spy = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(main([tree({ 'a.yaml': goodRestore })])).toBe(0);
      expect(main([tree({ 'a.yaml': goodRestore.replace('populator: {}', 'pvc: {}') })])).toBe(1);
      expect(main(['/nonexistent/path'])).toBe(2);
      expect(main([])).toBe(2);
    } finally {
      spy.mockRestore();
      err.mockRestore();
    }
  });
});
