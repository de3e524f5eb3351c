/**
 * Job and event ids are decimal strings of 64-bit integers (see types.ts);
 * they compare by length first, then digit by digit, never as JS numbers.
 */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
