/** A clock for unit tests: sleeping advances time at once and records how long was asked. */
import type { Clock } from "../../src/core/clock.js";

export class FakeClock implements Clock {
  time = 1_000_000;
  readonly sleeps: number[] = [];
  constructor(private readonly randomValue = 0.5) {}
  now(): number {
    return this.time;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
    this.sleeps.push(ms);
    this.time += ms;
  }
  random(): number {
    return this.randomValue;
  }
}
