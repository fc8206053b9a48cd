// The last check before an operator builds a mover Job (job-gate.ts).
import { moverJobRefusal } from '../job-gate.js';

const namespace = (annotations: Record<string, string> = {}, labels: Record<string, string> = {}) => ({
  metadata: { name: 'media', annotations, labels },
});
const shared = (allowedNamespaces: object) => ({ kind: 'ClusterRepository' as const, name: 'shared', spec: { allowedNamespaces } });
const own = { kind: 'Repository' as const, name: 'nas', spec: {} };

it('lets the default mover run from an allowed repository', () => {
  expect(
    moverJobRefusal({ settings: {}, namespace: 'media', namespaceObject: namespace(), repository: shared({ names: ['media'] }) }),
  ).toBeUndefined();
});

it('refuses a namespace that left allowedNamespaces, as of now', () => {
  expect(
    moverJobRefusal({ settings: {}, namespace: 'media', namespaceObject: namespace(), repository: shared({ names: ['other'] }) }),
  ).toMatchObject({
    reason: 'RepositoryNotAllowed',
    message: 'ClusterRepository shared does not allow namespace media (spec.allowedNamespaces)',
  });
  const selector = shared({ selector: { matchLabels: { tier: 'gold' } } });
  expect(
    moverJobRefusal({ settings: {}, namespace: 'media', namespaceObject: namespace({}, { tier: 'gold' }), repository: selector }),
  ).toBeUndefined();
  expect(
    moverJobRefusal({ settings: {}, namespace: 'media', namespaceObject: namespace({}, { tier: 'tin' }), repository: selector }),
  ).toMatchObject({
    reason: 'RepositoryNotAllowed',
  });
});

it('refuses privileged settings once the opt-in is withdrawn', () => {
  const settings = { mover: { securityContext: { runAsUser: 0 } }, addCapabilities: ['DAC_READ_SEARCH'] };
  const optedIn = namespace({ 'kopia.io/privileged-movers': 'true' });
  expect(moverJobRefusal({ settings, namespace: 'media', namespaceObject: optedIn, repository: own })).toBeUndefined();
  const refusal = moverJobRefusal({ settings, namespace: 'media', namespaceObject: namespace(), repository: own });
  expect(refusal?.reason).toBe('PrivilegedMoverNotAllowed');
  expect(refusal?.message).toContain('capability DAC_READ_SEARCH');
});

it('refuses a namespaced Repository moved to a node directory, though it was Ready before', () => {
  const settings = { filesystem: { path: '/', volume: { hostPath: { path: '/var/lib' } } } };
  expect(moverJobRefusal({ settings, namespace: 'media', namespaceObject: namespace(), repository: own })).toMatchObject({
    reason: 'PrivilegedMoverNotAllowed',
    message: expect.stringContaining('hostPath (/var/lib)'),
  });
});
