/**
 * What makes a read a stream, for every format: the `starting_position` option. Spark's
 * `schema()` cannot tell `spark.readStream` from `spark.read`, so the options say it, and
 * both mistakes get the same errors whatever the format.
 */
import { invalidArgument } from "./errors.js";

/** A streaming call without `starting_position`: say how to make the read a stream. */
export function requireStartingPosition(format: string, present: boolean, choices: string): void {
  if (present) return;
  throw invalidArgument(
    "STREAM_STARTING_POSITION_REQUIRED",
    `spark.readStream.format("${format}") needs option 'starting_position': ${choices}. It is what makes the read a stream; a query restarted from its checkpoint continues from there instead.`,
    { option: "starting_position", format },
  );
}

/** A batch read with `starting_position`: the option only means something to readStream. */
export function refuseStartingPositionInBatchRead(format: string, present: boolean, what: string, parameters: Record<string, string>): void {
  if (!present) return;
  throw invalidArgument(
    "STREAM_OPTION_IN_BATCH_READ",
    `Option 'starting_position' makes a read of format '${format}' a stream: use spark.readStream, or leave the option out to read ${what} with spark.read.`,
    { option: "starting_position", ...parameters },
  );
}
