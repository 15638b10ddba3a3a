/**
 * The timestamp form of `starting_position`, shared by every format's streaming read:
 * ISO-8601 with or without a time and zone (UTC when it has none), strict about dates.
 */

const ISO = /^\d{4}-\d{2}-\d{2}([t ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(z|[+-]\d{2}:?\d{2})?$/;

/** The instant an ISO-8601 timestamp names, or undefined when the text is not one. */
export function parseStartingTimestamp(text: string): Date | undefined {
  const value = text.trim().toLowerCase();
  const iso = ISO.exec(value);
  if (!iso) return undefined;
  const zoned = iso[4] !== undefined ? text.trim() : `${text.trim()}${iso[1] === undefined ? "T00:00:00" : ""}Z`;
  const at = new Date(zoned.replace(" ", "T"));
  // Date rolls days past a month's end over (2026-02-30 would be March 2): refuse them instead.
  const [year, month, day] = value.slice(0, 10).split("-").map(Number) as [number, number, number];
  const inMonth = day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
  return !Number.isNaN(at.getTime()) && inMonth ? at : undefined;
}
