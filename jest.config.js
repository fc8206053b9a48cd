// Three tiers (DESIGN.md section 4), and the kind suite: unit (pure logic), kopia (the real kopia binary
// against real repositories) and control plane (real etcd, kube-apiserver and
// kube-controller-manager started once per run by the global setup).
const tsJest = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node',
  // @dot-i/k8s-operator require()s our ESM client-node, which Node does and jest cannot (e2e/support/jest-resolver.cjs).
  resolver: '<rootDir>/e2e/support/jest-resolver.cjs',
};

export default {
  projects: [
    { ...tsJest, displayName: 'unit', testMatch: ['<rootDir>/operator/**/*.test.ts', '<rootDir>/scripts/**/*.test.ts'] },
    { ...tsJest, displayName: 'kopia', testMatch: ['<rootDir>/e2e/kopia/**/*.test.ts'] },
    {
      ...tsJest,
      displayName: 'control-plane',
      testMatch: ['<rootDir>/e2e/controlplane/**/*.test.ts'],
      globalSetup: '<rootDir>/e2e/support/global-setup.mjs',
      globalTeardown: '<rootDir>/e2e/support/global-teardown.mjs',
      // These tests construct operators, whose @dot-i base uses the client (jest-resolver.cjs).
      setupFiles: ['<rootDir>/e2e/support/jest-client-node.mjs'],
    },
    // The kind suite (make e2e): a real cluster made by e2e/kind/run.sh, driven through kubectl.
    { ...tsJest, displayName: 'kind', testMatch: ['<rootDir>/e2e/kind/**/*.test.ts'] },
  ],
  testTimeout: 120000,
};
