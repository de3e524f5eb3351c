/**
 * GraphQL gives an omitted argument as absent and an explicit null as null.
 * Where the API documents null as "not given" (every optional input except
 * configureQueue's settings, where null clears a setting), the resolvers drop
 * null keys before calling the service, which then applies its defaults.
 */
type WithoutNull<T> = { [K in keyof T]: Exclude<T[K], null> };

export function withoutNulls<T extends object>(input: T): WithoutNull<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) if (value !== null) out[key] = value;
  return out as WithoutNull<T>;
}
