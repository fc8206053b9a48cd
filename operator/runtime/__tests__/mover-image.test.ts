import { moverImageFromEnv, moverImageFromPod } from '../mover-image.js';

describe('moverImageFromEnv', () => {
  it('takes MOVER_IMAGE when it is set: the override wins over the pod', () => {
    expect(moverImageFromEnv({ MOVER_IMAGE: 'registry.example/kopia-operator:1.2.3', POD_NAME: 'op-1' })).toEqual({
      image: 'registry.example/kopia-operator:1.2.3',
    });
  });

  it('reads its own Pod when MOVER_IMAGE is unset or empty', () => {
    expect(moverImageFromEnv({ POD_NAME: 'op-1' })).toEqual({ readOwnPod: 'op-1' });
    expect(moverImageFromEnv({ MOVER_IMAGE: '', POD_NAME: 'op-1' })).toEqual({ readOwnPod: 'op-1' });
    expect(moverImageFromEnv({ MOVER_IMAGE: '  ', POD_NAME: 'op-1' })).toEqual({ readOwnPod: 'op-1' });
  });

  it('fails with the cause when neither MOVER_IMAGE nor POD_NAME is set: no image is guessed', () => {
    const plan = moverImageFromEnv({});
    expect(plan).toEqual({ error: expect.stringContaining('MOVER_IMAGE') });
    expect((plan as { error: string }).error).toContain('POD_NAME');
    expect((plan as { error: string }).error).not.toContain('\n');
  });
});

describe('moverImageFromPod', () => {
  const pod = (...containers: Array<[string, string]>) => ({
    metadata: { name: 'kopia-operator-5d9c', namespace: 'kopia-system' },
    spec: { containers: containers.map(([name, image]) => ({ name, image })) },
  });

  it("takes the image of the process's own container, not a sidecar's", () => {
    const p = pod(['istio-proxy', 'istio/proxyv2:1.20'], ['operator', 'registry.example/kopia-operator:1.2.3']);
    expect(moverImageFromPod(p, 'operator')).toEqual({ image: 'registry.example/kopia-operator:1.2.3' });
  });

  it('takes the only container when it has another name (a renamed container in a custom manifest)', () => {
    expect(moverImageFromPod(pod(['manager', 'kopia-operator:0.1.0']), 'populator')).toEqual({ image: 'kopia-operator:0.1.0' });
  });

  it('fails naming the containers when several are there and none is its own', () => {
    const plan = moverImageFromPod(pod(['a', 'x:1'], ['b', 'y:1']), 'operator');
    expect(plan).toEqual({ error: expect.stringContaining('kopia-system/kopia-operator-5d9c') });
    expect((plan as { error: string }).error).toMatch(/"operator".*a, b/);
  });

  it('fails when its own container names no image', () => {
    expect(moverImageFromPod(pod(['operator', '']), 'operator')).toEqual({ error: expect.stringContaining('no image') });
  });
});
