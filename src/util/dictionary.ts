/**
 * Records keyed by names that come from files (model names, versions): a model may be called
 * "constructor", which a plain object already "has". These have no prototype, so a lookup finds
 * only what was put in; `own` reads any other record the same way.
 */
export function dictionary<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** The record's own value for `key`, never one inherited from Object.prototype. */
export function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}
