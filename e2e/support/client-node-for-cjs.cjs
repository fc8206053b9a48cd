// @kubernetes/client-node for @dot-i/k8s-operator's require() under jest (jest-resolver.cjs):
// the module the test's own imports loaded, looked up when @dot-i first uses it (it only
// does in its Operator constructor), so a test that merely imports a module reaching @dot-i
// needs no setup.
const key = Symbol.for('kopia-operator.test.client-node');

module.exports = new Proxy(
  {},
  {
    get(_, name) {
      if (name === '__esModule') return true; // @dot-i's __importStar then uses this object as is
      const loaded = globalThis[key];
      if (!loaded)
        throw new Error(
          '@dot-i/k8s-operator used @kubernetes/client-node under jest without e2e/support/jest-client-node.mjs in setupFiles',
        );
      return loaded[name];
    },
  },
);
