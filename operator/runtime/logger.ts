// One winston logger for every program: JSON lines to stdout, level from LOG_LEVEL.
// Secrets are never passed to it; redactSecrets() is a last guard for text from outside
// (kopia output), replacing the values of the secret environment variables we hold.
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { component },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
}

/** Replaces every occurrence of the given secret values, and credentials in URLs, in text. */
export function redactSecrets(text: string, secrets: string[]): string {
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out.replace(/([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/\s@]*@/g, '$1[redacted]@');
}
