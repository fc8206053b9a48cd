import { classifyKopiaError, firstMeaningfulLine } from '../kopia-errors.js';
import { parseMoverResult, terminationMessage, TERMINATION_MESSAGE_LIMIT } from '../mover-contract.js';

// Messages as kopia 0.23 prints them (seen in the kopia tier).
const cases: { given: string; expect: string }[] = [
  { given: 'error connecting to repository: repository not initialized in the provided storage', expect: 'NotInitialized' },
  { given: 'failed to open repository: unable to create format manager: invalid repository password', expect: 'WrongPassword' },
  { given: "can't connect to storage: cannot access storage path: stat /repository/x: no such file or directory", expect: 'Unreachable' },
  {
    given: 'can\'t connect to storage: error retrieving storage config from bucket "b": dial tcp 127.0.0.1:1: connect: connection refused',
    expect: 'Unreachable',
  },
  {
    given: 'error connecting to repository: unable to read format blob: ... ReadStream .shards: Authorize .shards: 401',
    expect: 'Unreachable',
  },
  { given: 'unable to get repository storage: error listing blobs: The specified bucket does not exist', expect: 'Unreachable' },
  { given: 'unable to get repository storage: found existing data in storage location', expect: 'Other' },
  { given: 'kopia: error: unknown long flag --bogus', expect: 'Other' },
  { given: '', expect: 'Other' },
];

it.each(cases.map((c) => [c.expect, c.given] as const))('classifies as %s: %s', (expected, given) => {
  expect(classifyKopiaError(given).errorClass).toBe(expected);
});

it('picks the line that says what went wrong', () => {
  expect(firstMeaningfulLine('Connecting to storage backend...\n\nerror connecting to repository: repository not initialized\n')).toBe(
    'error connecting to repository: repository not initialized',
  );
  expect(firstMeaningfulLine('just one line')).toBe('just one line');
});

it('reads a mover result, and turns anything else into Other with its first line', () => {
  expect(parseMoverResult('{"ok":true,"operation":"verify"}')).toEqual({ ok: true, operation: 'verify' });
  expect(parseMoverResult('OOMKilled\nmore')).toEqual({ ok: false, operation: 'unknown', errorClass: 'Other', message: 'OOMKilled' });
  // A negative count would lower the shared deletion ledger: no mover says that.
  expect(parseMoverResult('{"ok":true,"operation":"backup","expired":-40}')).toMatchObject({
    ok: false,
    message: expect.stringContaining('negative'),
  });
  expect(parseMoverResult('{"ok":true,"operation":"edit","edited":{"deleted":-1,"alreadyGone":0,"pinned":0,"unpinned":0}}')).toMatchObject({
    ok: false,
  });
  expect(parseMoverResult(undefined)).toMatchObject({ ok: false, errorClass: 'Other', message: 'the mover ended without a result' });
  // An error class no mover writes becomes Other: it turns into a condition reason and a metric label.
  expect(parseMoverResult('{"ok":false,"operation":"restore","errorClass":"Pwned\\nlabel=\\"x\\"","message":"m"}')).toEqual({
    ok: false,
    operation: 'restore',
    errorClass: 'Other',
    message: 'm',
  });
  expect(parseMoverResult('{"ok":false,"operation":"restore","errorClass":"Unreachable","message":"m"}')).toMatchObject({
    errorClass: 'Unreachable',
  });
});

it('keeps the termination message under 4 KiB and free of secret values', () => {
  const long = terminationMessage({ ok: false, operation: 'verify', errorClass: 'Other', message: `boom ${'x'.repeat(10000)}` }, []);
  expect(long.length).toBeLessThanOrEqual(TERMINATION_MESSAGE_LIMIT);
  expect(JSON.parse(long)).toMatchObject({ ok: false, errorClass: 'Other' });
  const leaky = terminationMessage({ ok: false, operation: 'verify', errorClass: 'Other', message: 'auth failed for hunter2-password' }, [
    'hunter2-password',
  ]);
  expect(leaky).not.toContain('hunter2-password');
  expect(JSON.parse(leaky).message).toBe('auth failed for [redacted]');
});
