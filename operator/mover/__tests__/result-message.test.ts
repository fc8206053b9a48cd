import { TERMINATION_MESSAGE_LIMIT, type MoverSuccess } from '../mover-contract.js';
import { resultMessage } from '../result-message.js';

const backup = (examples: string[]): MoverSuccess => ({
  ok: true,
  operation: 'backup',
  snapshot: { id: 'a7dff7dfd7db6a49244c95c1946bb818', startTime: '2026-11-27T14:58:34.150792553Z', stats: { files: 1, errors: 9 } },
  fileErrors: { count: 9, examples },
  mover: { uid: 65534, gid: 65534 },
});

it('keeps a backup with file errors whole when it fits', () => {
  const message = resultMessage(backup(['a/b: permission denied']), []);
  expect(JSON.parse(message)).toEqual(backup(['a/b: permission denied']));
});

it('drops file error examples, never the snapshot id, when they would not fit 4 KiB', () => {
  // Control characters in file names grow sixfold as JSON escapes.
  const examples = Array.from({ length: 5 }, (_, i) => `${i}${'\u0001'.repeat(199)}`);
  const message = resultMessage(backup(examples), []);
  expect(message.length).toBeLessThanOrEqual(TERMINATION_MESSAGE_LIMIT);
  const parsed = JSON.parse(message) as MoverSuccess;
  expect(parsed.snapshot?.id).toBe('a7dff7dfd7db6a49244c95c1946bb818');
  expect(parsed.fileErrors?.count).toBe(9);
  expect(parsed.fileErrors!.examples.length).toBeLessThan(5);
  expect(parsed.fileErrors!.examples.length).toBeGreaterThan(0);
});

it('redacts secrets in examples', () => {
  expect(resultMessage(backup(['/data/hunter2-secret: denied']), ['hunter2-secret'])).not.toContain('hunter2-secret');
});
