import { moverPermission, privilegedSettings, PRIVILEGED_MOVERS_ANNOTATION } from '../mover-privileges.js';

const pvc = { path: '/', volume: { persistentVolumeClaim: { claimName: 'nas' } } };

describe('privileged mover settings', () => {
  const cases: { name: string; given: Parameters<typeof privilegedSettings>[0]; expect: string[] }[] = [
    { name: 'defaults', given: { filesystem: pvc }, expect: [] },
    { name: 'the default id stated explicitly', given: { mover: { securityContext: { runAsUser: 65534, fsGroup: 65534 } } }, expect: [] },
    {
      name: 'root',
      given: { mover: { securityContext: { runAsUser: 0 } } },
      expect: ['spec.mover.securityContext.runAsUser: 0 (root)'],
    },
    {
      name: 'a chosen uid and group',
      given: { mover: { securityContext: { runAsUser: 1000, runAsGroup: 100 } } },
      expect: ['spec.mover.securityContext.runAsUser: 1000', 'spec.mover.securityContext.runAsGroup: 100'],
    },
    {
      name: 'a node directory',
      given: { filesystem: { path: '/', volume: { hostPath: { path: '/' } } } },
      expect: ['spec.backend.filesystem.volume.hostPath (/)'],
    },
    {
      name: 'an NFS export',
      given: { filesystem: { path: '/', volume: { nfs: { server: 'nas', path: '/export' } } } },
      expect: ['spec.backend.filesystem.volume.nfs (nas:/export)'],
    },
    { name: 'an added capability', given: { addCapabilities: ['DAC_READ_SEARCH'] }, expect: ['capability DAC_READ_SEARCH'] },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(privilegedSettings(c.given)).toEqual(c.expect);
  });
});

describe('who may use them', () => {
  const root = ['spec.mover.securityContext.runAsUser: 0 (root)'];
  it('allows anything unprivileged, anywhere', () => {
    expect(moverPermission([], { clusterScoped: false, namespace: 'media', namespaceAnnotations: {} })).toEqual({ allowed: true });
  });
  it('allows a ClusterRepository (written by a cluster administrator)', () => {
    expect(moverPermission(root, { clusterScoped: true })).toEqual({ allowed: true });
  });
  it('refuses a namespaced object unless the namespace is opted in, naming the setting and the way out', () => {
    const refused = moverPermission(root, { clusterScoped: false, namespace: 'media', namespaceAnnotations: {} });
    expect(refused.allowed).toBe(false);
    expect(!refused.allowed && refused.message).toContain('runAsUser: 0 (root)');
    expect(!refused.allowed && refused.message).toContain(`${PRIVILEGED_MOVERS_ANNOTATION}: "true"`);
    const wrongValue = { [PRIVILEGED_MOVERS_ANNOTATION]: 'yes' };
    expect(moverPermission(root, { clusterScoped: false, namespace: 'media', namespaceAnnotations: wrongValue }).allowed).toBe(false);
    const optedIn = { [PRIVILEGED_MOVERS_ANNOTATION]: 'true' };
    expect(moverPermission(root, { clusterScoped: false, namespace: 'media', namespaceAnnotations: optedIn })).toEqual({ allowed: true });
  });
});
