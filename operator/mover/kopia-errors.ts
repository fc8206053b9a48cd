// Classifies kopia failures. kopia exits 1 for every error, so the class comes from its
// message, matched explicitly; anything unrecognised is Other (never guessed into a class
// that would allow creating a repository).
import type { KopiaErrorClass } from './mover-contract.js';

const UNREACHABLE =
  /can't connect to storage|cannot access storage|unable to get repository storage: (?!found existing data)|connection refused|no such host|i\/o timeout|deadline exceeded|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|NoSuchBucket|permission denied|x509:|handshake failed|unable to authenticate|: 40[13]\b|Unauthorized|Forbidden/i;

const RULES: { errorClass: KopiaErrorClass; pattern: RegExp }[] = [
  { errorClass: 'NotInitialized', pattern: /repository not initialized/i },
  { errorClass: 'WrongPassword', pattern: /invalid repository password/i },
  { errorClass: 'Unreachable', pattern: UNREACHABLE },
];

/** The line that says what went wrong: the first error-looking line, else the last line. */
export function firstMeaningfulLine(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errorLine = lines.find((l) => /error|can't|cannot|unable|failed|invalid|denied|refused|not initialized/i.test(l));
  return (errorLine ?? lines[lines.length - 1] ?? 'kopia failed without a message').slice(0, 512);
}

export function classifyKopiaError(output: string): { errorClass: KopiaErrorClass; message: string } {
  const message = firstMeaningfulLine(output);
  for (const rule of RULES) if (rule.pattern.test(output)) return { errorClass: rule.errorClass, message };
  return { errorClass: 'Other', message };
}

/**
 * A failed restore. Go names the path in a failed system call ("open /data/app.db:
 * permission denied"): "permission denied" on the target is the volume's problem, not an
 * unreachable storage, and such a failure is Other (one on /repository stays Unreachable).
 */
export function classifyRestoreError(output: string, target: string): { errorClass: KopiaErrorClass; message: string } {
  const found = classifyKopiaError(output);
  if (found.errorClass !== 'Unreachable') return found;
  const escaped = target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const onTarget = new RegExp(`(?<![\\w./-])${escaped}(/[^:\\n]*)?: permission denied`, 'gi');
  return UNREACHABLE.test(output.replace(onTarget, '')) ? found : { errorClass: 'Other', message: found.message };
}
