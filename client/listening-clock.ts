/**
 * How long the controller has been silent, counted only over time this process could listen.
 *
 * A notebook cell that computes for a minute holds the event loop: no timer runs and no socket is
 * read, while the controller's heartbeats wait queued in ZeroMQ. When the loop is free again,
 * Node runs expired timers before it polls the sockets, so a wall-clock watchdog would judge
 * before reading the heartbeats that prove the controller alive. So a tick that comes late (the
 * loop was held) adds at most one period and judges nothing: the next tick, on time, comes after
 * a poll has read what was queued.
 */
export class ListeningClock {
  private silentMs = 0;
  private lastTick: number;

  constructor(
    private readonly period: number,
    private readonly limitMs: number,
    now: number,
  ) {
    this.lastTick = now;
  }

  /** A heartbeat (any sign of the controller) arrived. */
  heard(): void {
    this.silentMs = 0;
  }

  /** Silence counted so far, in ms of listening. */
  get silent(): number {
    return this.silentMs;
  }

  /**
   * Called by a `period` timer. True when the controller has been silent for `limitMs` of time
   * the loop was free to hear it; a late tick never says so.
   */
  tick(now: number): boolean {
    const gap = Math.max(0, now - this.lastTick);
    this.lastTick = now;
    const late = gap > 2 * this.period;
    this.silentMs += late ? this.period : gap;
    return !late && this.silentMs > this.limitMs;
  }
}
