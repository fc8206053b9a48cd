// Loads @kubernetes/client-node through the test file's module registry, so that @dot-i's
// require() of it (jest-resolver.cjs) gets the same module as the test's own imports.
import * as clientNode from '@kubernetes/client-node';

globalThis[Symbol.for('kopia-operator.test.client-node')] = clientNode;
