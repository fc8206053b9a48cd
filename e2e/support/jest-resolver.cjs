// Jest's module system cannot require() an ES module; Node (20.19+) can, and so does
// @dot-i/k8s-operator (CommonJS) with our @kubernetes/client-node 1.x (ES modules) in the
// shipped processes. Under jest, that one require is answered by client-node-for-cjs.cjs:
// the very client-node module the test's own imports loaded (jest-client-node.mjs).
const { join } = require('node:path');

const bridge = join(__dirname, 'client-node-for-cjs.cjs');

module.exports = (request, options) => {
  const fromDotI = /[\\/]node_modules[\\/]@dot-i[\\/]k8s-operator[\\/]/.test(options.basedir);
  if (request === '@kubernetes/client-node' && fromDotI && !options.conditions?.includes('import')) return bridge;
  return options.defaultResolver(request, options);
};
