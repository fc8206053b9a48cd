// The bundles hand @dot-i/k8s-operator a module with only the client names it uses
// (scripts/bundle.ts); a name it takes beyond those would be undefined in the shipped
// processes. This fails when an upgrade of @dot-i makes that list wrong.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as clientNode from '@kubernetes/client-node';
import { DOT_I_CLIENT_NAMES } from './bundle.js';

test("the client names the bundles hand @dot-i/k8s-operator are the ones its code uses, and the client's own", () => {
  const file = createRequire(import.meta.url).resolve('@dot-i/k8s-operator');
  const source = readFileSync(file, 'utf8');
  // TypeScript's CommonJS output: `const k8s = __importStar(require("@kubernetes/client-node"))`, `const client_node_1 = require(...)`.
  const bindings = [...source.matchAll(/(?:const|var|let)\s+(\w+)\s*=\s*(?:__importStar\()?require\("@kubernetes\/client-node"\)/g)].map(
    (m) => m[1],
  );
  expect(bindings.length).toBeGreaterThan(0);
  const used = new Set(bindings.flatMap((b) => [...source.matchAll(new RegExp(`(?<![\\w.])${b}\\.(\\w+)`, 'g'))].map((m) => m[1])));
  expect([...used].sort()).toEqual([...DOT_I_CLIENT_NAMES].sort());
  for (const name of DOT_I_CLIENT_NAMES) expect(clientNode).toHaveProperty(name);
});
