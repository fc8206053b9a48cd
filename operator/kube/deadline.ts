// An AbortSignal for one request that fires when the caller's own signal does or when the
// time runs out. A watch extends it on every byte it receives, so it then measures silence
// rather than total duration.

export class Deadline {
  private readonly controller = new AbortController();
  private timer?: NodeJS.Timeout;
  private expiredError?: Error;

  /**
   * @param ms how long until the deadline passes (again, after each extend())
   * @param expiredErrorOf builds the error to report once it has passed
   * @param caller the caller's signal, if any: its abort is passed on as is
   */
  constructor(
    private readonly ms: number,
    private readonly expiredErrorOf: () => Error,
    private readonly caller?: AbortSignal,
  ) {
    if (caller?.aborted) this.controller.abort(caller.reason);
    else caller?.addEventListener('abort', this.onCallerAbort, { once: true });
    this.arm();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The error to throw instead of the transport's abort error, once the deadline has passed. */
  get expired(): Error | undefined {
    return this.expiredError;
  }

  /** Moves the deadline `ms` into the future again. */
  extend(): void {
    if (this.controller.signal.aborted) return;
    clearTimeout(this.timer);
    this.arm();
  }

  /** Stops the timer and lets go of the caller's signal (which may outlive many requests). */
  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this.onCallerAbort);
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.expiredError = this.expiredErrorOf();
      this.controller.abort(this.expiredError);
    }, this.ms);
  }

  private readonly onCallerAbort = (): void => {
    clearTimeout(this.timer);
    this.controller.abort(this.caller?.reason);
  };
}
