/** A manual clock for lease and backoff tests: time moves only when told. */
export class ManualClock {
  private ms: number;

  constructor(start = Date.parse("2026-01-01T00:00:00.000Z")) {
    this.ms = start;
  }

  readonly now = (): Date => new Date(this.ms);

  advance(ms: number): void {
    this.ms += ms;
  }

  set(date: Date): void {
    this.ms = date.getTime();
  }
}
