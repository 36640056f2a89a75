// The one conversion of a JavaScript Date into the server's datetime: a filter bound travels as
// a Timestamp (ts-proto maps it to a Date), a metadata value as that Timestamp's RFC 3339 text.

/** `date` itself; a RangeError naming `what` when it is an invalid Date (`new Date("x")`). */
export function validInstant(date: Date, what: string): Date {
  if (Number.isNaN(date.getTime())) throw new RangeError(`${what}: invalid Date`);
  return date;
}

/** `date` as RFC 3339 text in UTC with "Z" and 0 or 3 fraction digits (the JSON form of its
 * Timestamp), e.g. "2020-01-31T12:00:00Z"; a RangeError naming `what` when it is invalid. */
export function instantRfc3339(date: Date, what: string): string {
  return validInstant(date, what).toISOString().replace(/\.000Z$/, "Z");
}
