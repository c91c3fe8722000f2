/** --limit-rate: one token bucket shared by every transfer of a run. */
import { sleep } from '../registry/client.js';

/** A shared token bucket for --limit-rate. */
export class RateLimiter {
  private available: number;
  private last = Date.now();
  constructor(private readonly bytesPerSecond: number) {
    this.available = bytesPerSecond / 4;
  }
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.available = Math.min(this.bytesPerSecond, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      if (this.available >= bytes || this.available >= this.bytesPerSecond / 2) {
        this.available -= bytes;
        return;
      }
      await sleep(Math.ceil(((Math.min(bytes, this.bytesPerSecond / 2) - this.available) / this.bytesPerSecond) * 1000), signal);
    }
  }
}
