/**
 * The clients this responder replica holds, keyed by request id. Bounded: the
 * caller checks `isFull()` and refuses new clients, so memory never grows
 * without limit. Every entry leaves the map exactly once: answered, timed out,
 * or its client gone. A client gone while its request's publish still runs
 * keeps its place (and its body stays in memory) until that publish ends.
 */
import type { QueuedResponse } from '../shared/envelope.js';

export interface PendingRequest {
  onReply: (response: QueuedResponse) => void;
  /** Its reply arrived but could not be decoded: the client is answered 502 at once. */
  onInvalidReply: (reason: string) => void;
  /** The inbox its reply was routed to was lost (LostInbox): the client is answered at once. */
  onInboxLost: (cause: string) => void;
  /** The reply destination its request was published with. */
  replyTo: string | undefined;
  timer: NodeJS.Timeout;
}

/** Where a held request's reply goes, and what to do when that inbox is lost. */
export interface ReplyRoute {
  replyTo: string;
  onInboxLost: (cause: string) => void;
}

export class PendingRequests {
  private readonly entries = new Map<string, PendingRequest>();
  /** Places taken without a held client: clients that left while their publish still runs, submissions being published. */
  private leftWhilePublishing = 0;

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.entries.size;
  }

  isFull(): boolean {
    return this.entries.size + this.leftWhilePublishing >= this.limit;
  }

  /**
   * Keeps one place taken until `publishing` settles: for a client that left while its request was
   * being published, whose body the broker client still holds (up to --publish-timeout).
   */
  keepPlaceUntil(publishing: Promise<unknown>): void {
    const release = this.takePlace();
    publishing.then(release, release);
  }

  /** Takes one place now, with no client held in it; the function returned gives it back (once). */
  takePlace(): () => void {
    this.leftWhilePublishing++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.leftWhilePublishing--;
    };
  }

  /** Holds a client until `take` or until `timeoutMs`, when onTimeout runs. */
  hold(
    id: string,
    timeoutMs: number,
    onReply: (response: QueuedResponse) => void,
    onTimeout: () => void,
    onInvalidReply: (reason: string) => void = () => onTimeout(),
    route?: ReplyRoute,
  ): void {
    const timer = setTimeout(() => {
      if (this.entries.delete(id)) onTimeout();
    }, timeoutMs);
    this.entries.set(id, { onReply, onInvalidReply, onInboxLost: route?.onInboxLost ?? (() => onTimeout()), replyTo: route?.replyTo, timer });
  }

  /** Removes and returns the entry, or undefined if it was already answered, timed out or released. */
  take(id: string): PendingRequest | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  /** Removes and returns, with their ids, the entries whose reply was routed to `replyTo`. */
  takeRoutedTo(replyTo: string): Array<{ id: string; entry: PendingRequest }> {
    const taken: Array<{ id: string; entry: PendingRequest }> = [];
    for (const [id, entry] of this.entries) {
      if (entry.replyTo !== replyTo) continue;
      this.entries.delete(id);
      clearTimeout(entry.timer);
      taken.push({ id, entry });
    }
    return taken;
  }

  /** Resolves once no client is held, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.entries.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return this.entries.size === 0;
  }
}
