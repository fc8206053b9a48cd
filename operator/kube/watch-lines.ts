// Splits a watch response (newline-delimited JSON) into lines. Bytes are decoded as one
// UTF-8 stream, so a character split across two network chunks is joined, not mangled.

export class WatchLines {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';

  /** The complete, non-empty lines that this chunk finishes. */
  push(chunk: Uint8Array): string[] {
    this.pending += this.decoder.decode(chunk, { stream: true });
    const parts = this.pending.split('\n');
    this.pending = parts.pop()!;
    return parts.map((line) => line.trim()).filter(Boolean);
  }
}
