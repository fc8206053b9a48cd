// The secret values a mover holds, so that no log line or termination message repeats
// them: the secret environment variables and the Secret files mounted under
// /etc/kopia-secrets (a private key or rclone.conf printed back by a tool is redacted too).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Environment variable names whose values are secrets. */
const SECRET_ENV = /PASSWORD|SECRET|TOKEN|KEY$|_KEY_ID$|ACCOUNT$/;
/** Lines of a secret file shorter than this are not secrets on their own (e.g. "[nas]", "}"). */
const MIN_LINE = 8;

export function secretEnvValues(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env)
    .filter(([k, v]) => SECRET_ENV.test(k) && v)
    .map(([, v]) => v!);
}

/** Each file's whole content and each of its longer lines; missing directory → none. */
export function secretFileValues(dir: string): string[] {
  const values: string[] = [];
  const walk = (path: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(path);
    } catch {
      return;
    }
    for (const name of entries) {
      const full = join(path, name);
      let st;
      try {
        st = statSync(full); // follows the ..data symlinks of projected volumes
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        // Projected volumes hold the same files under a timestamped directory; do not read them twice.
        if (depth < 4 && !name.startsWith('..')) walk(full, depth + 1);
      } else if (st.isFile() && st.size <= 1024 * 1024) {
        const text = readFileSync(full, 'utf8');
        values.push(
          text.trim(),
          ...text
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l.length >= MIN_LINE),
        );
      }
    }
  };
  walk(dir, 0);
  return [...new Set(values.filter(Boolean))].sort((a, b) => b.length - a.length);
}
