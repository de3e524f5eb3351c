/**
 * What a WebSocket client has read, learned from its answers to pings, and
 * the keep-alive that ends a client who stopped reading with a reason.
 *
 * Why: ws calls a send back once the kernel has taken the bytes, and on a
 * local or fast link the kernel's send and receive buffers take megabytes, so
 * graphql-ws (which pulls a subscription's next event only when the previous
 * send is done) stops pulling only when they are full. A client that stopped
 * reading small events was never told anything: the keep-alive terminated it
 * (the client saw 1006, like a network fault) long before its subscription's
 * buffer filled.
 *
 * Read confirmation: a WebSocket peer answers a ping (pong with the ping's
 * payload) only after reading everything sent before it: the connection is
 * ordered. So every ping is a probe: it records how many messages each live
 * subscription had written before it, and its pong confirms those as read
 * (LiveStream.confirmRead). The stream counts events written but not
 * confirmed against its buffer (`subscriptionBuffer`), so a reader that
 * stopped is ended with SUBSCRIPTION_OVERFLOW within that many events. A probe
 * goes out once an eighth of some subscription's buffer was written since the
 * last one (so what is confirmed lags by at most that plus a round trip), and
 * at every keep-alive tick; at most MAX_PROBES wait unanswered
 * (beyond that the confirmation is coarser, never wrong). Pings are
 * control frames every WebSocket client answers by itself (browsers
 * included): no protocol change.
 *
 * Keep-alive: every `keepAliveMs`, a probe sent at or before the previous tick
 * and still unanswered means the client is stalled (the same rule as
 * graphql-ws's own keep-alive, which this replaces). Then each live
 * subscription on the socket gets a SUBSCRIPTION_OVERFLOW error (`stalled`,
 * with the last event it was sent), queued behind what was already sent, and
 * the socket is closed with STALLED_CLOSE_CODE and the reason
 * "stalled: no pong within N ms; last event id X". A close, not a terminate:
 * a client that reads again gets everything that was sent, then the errors,
 * then the close frame; it can tell a stall from a network fault (1006). A peer
 * that does not finish the close handshake is cut off one interval later.
 */
import type { GraphQLFormattedError } from "graphql";
import { WebSocket } from "ws";
import type { LiveStream } from "../subscriptions/live-stream.ts";

/** The close code of a connection ended because its client stopped reading (README, "Connections"). */
export const STALLED_CLOSE_CODE = 4408;

/** Unanswered probes per socket at most. */
const MAX_PROBES = 16;

interface Tracked {
  readonly id: string;
  readonly stream: LiveStream<unknown>;
  /** Messages of this subscription handed to the socket. */
  written: number;
  /** The item of the last of them. */
  lastWritten: unknown;
  sinceProbe: number;
}

interface Probe {
  readonly seq: number;
  readonly written: ReadonlyMap<Tracked, number>;
}

function eventIdOf(item: unknown): string | undefined {
  if (typeof item !== "object" || item === null || !("id" in item)) return undefined;
  return typeof item.id === "string" ? item.id : undefined;
}

export class SocketReadTracker {
  private readonly subscriptions = new Map<string, Tracked>();
  private readonly probes: Probe[] = [];
  private seq = 0;
  /** Probes with a seq up to this one were sent at or before the last keep-alive tick. */
  private seqAtLastTick = 0;
  private probeScheduled = false;
  private lastEventId: string | undefined;
  private readonly timer: NodeJS.Timeout | null;
  private cutOff: NodeJS.Timeout | null = null;
  private disposed = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly keepAliveMs: number,
    /** How long sent events may wait for the client's read confirmation before they count against its buffer. */
    private readonly confirmGraceMs: number,
    /** Formats a domain error as the `error` message payload graphql-ws would send. */
    private readonly format: (error: Error) => GraphQLFormattedError,
  ) {
    socket.on("pong", (data: Buffer) => this.answered(data));
    socket.once("close", () => this.dispose());
    this.timer = keepAliveMs > 0 && Number.isFinite(keepAliveMs) ? setInterval(() => this.tick(), keepAliveMs) : null;
  }

  /** Starts confirming reads of a live subscription (graphql-ws id `id`). */
  add(id: string, stream: LiveStream<unknown>): void {
    if (this.disposed) return;
    stream.confirmReads(this.confirmGraceMs);
    this.subscriptions.set(id, { id, stream, written: 0, lastWritten: undefined, sinceProbe: 0 });
  }

  remove(id: string, stream: LiveStream<unknown>): void {
    if (this.subscriptions.get(id)?.stream === stream) this.subscriptions.delete(id);
  }

  /**
   * graphql-ws is about to send subscription `id`'s next message (onNext: the
   * send follows in the same microtask run, so no ping can come between).
   */
  wrote(id: string): void {
    const t = this.subscriptions.get(id);
    if (!t) return;
    t.written++;
    t.lastWritten = t.stream.lastTaken;
    this.lastEventId = eventIdOf(t.lastWritten) ?? this.lastEventId;
    if (++t.sinceProbe >= Math.max(1, Math.floor(t.stream.maxBuffer / 8)) && !this.probeScheduled) {
      // Not now: this message is not on the socket yet, and the ping must follow it.
      this.probeScheduled = true;
      setImmediate(() => {
        this.probeScheduled = false;
        this.probe();
      });
    }
  }

  private probe(): void {
    if (this.disposed || this.socket.readyState !== WebSocket.OPEN || this.probes.length >= MAX_PROBES) return;
    const seq = ++this.seq;
    const written = new Map<Tracked, number>();
    for (const t of this.subscriptions.values()) {
      written.set(t, t.written);
      t.sinceProbe = 0;
    }
    this.probes.push({ seq, written });
    this.socket.ping(String(seq));
  }

  private answered(data: Buffer): void {
    // Pongs come in order; one whose payload is not ours (a client that does
    // not echo it) answers the oldest probe.
    const parsed = Number(data.toString());
    const seq = Number.isSafeInteger(parsed) && parsed > 0 ? parsed : this.probes[0]?.seq;
    if (seq === undefined) return;
    while (this.probes.length > 0 && (this.probes[0] as Probe).seq <= seq) {
      const probe = this.probes.shift() as Probe;
      for (const [t, count] of probe.written) t.stream.confirmRead(count);
    }
  }

  private tick(): void {
    if (this.disposed || this.socket.readyState !== WebSocket.OPEN) return;
    const oldest = this.probes[0];
    if (oldest && oldest.seq <= this.seqAtLastTick) return this.stall();
    this.probe();
    this.seqAtLastTick = this.seq;
  }

  private stall(): void {
    for (const t of this.subscriptions.values()) {
      const error = t.stream.overflowError?.(t.lastWritten, true);
      if (error) this.socket.send(JSON.stringify({ id: t.id, type: "error", payload: [this.format(error)] }));
      // graphql-ws's sends no longer go out (the socket is closing): stop it pulling.
      void t.stream.return();
    }
    this.subscriptions.clear();
    const reason = `stalled: no pong within ${this.keepAliveMs} ms; ${
      this.lastEventId === undefined ? "no event sent" : `last event id ${this.lastEventId}`
    }`;
    this.socket.close(STALLED_CLOSE_CODE, reason);
    this.cutOff = setTimeout(() => this.socket.terminate(), this.keepAliveMs);
  }

  private dispose(): void {
    this.disposed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.cutOff) clearTimeout(this.cutOff);
    this.subscriptions.clear();
    this.probes.length = 0;
  }
}
