/**
 * Heartbeat accounting, pure: which engines are lost, counted in pings the controller sent and
 * whose answers it read, not in wall-clock time. A controller short of CPU sends fewer pings and
 * reads their answers late, so it does not declare live engines lost; the controller's own heart
 * (the canary) tells how far answers have been read. No sockets or timers: the heartbeat role
 * (sockets.ts) reports pings and echoes, and the hub asks `lost` on each check.
 */
import type { EngineEntry } from "./registry";

/**
 * How many times `misses` an engine whose heart has not echoed any ping yet is given. Its heart
 * connects after registration, and among 256 engines starting on 2 cores its first echo can come
 * seconds late; once it beats, the normal count applies. A local engine that dies meanwhile is
 * still noticed at once, by its pid.
 */
const FIRST_BEAT_GRACE = 6;

export class HeartMonitor {
  /** The newest ping sent, and the newest one the controller's own heart echoed, as read here. */
  private pingSent = 0;
  private canaryPing = 0;
  /** When each unknown beating uuid was last asked to register again (see `askToRegister`). */
  private readonly askedToRegister = new Map<string, number>();

  constructor(
    private readonly misses: number,
    private readonly period: number,
  ) {}

  pinged(seq: number): void {
    this.pingSent = seq;
  }

  canaryBeat(seq: number): void {
    this.canaryPing = Math.max(this.canaryPing, seq);
  }

  /** An echo of ping `seq` from `engine`'s heart. */
  beat(engine: EngineEntry, seq: number, now = Date.now()): void {
    engine.lastBeat = now;
    engine.heardAtPing = Math.max(engine.heardAtPing, seq);
    engine.beating = true;
  }

  /** A message from `engine`: it is alive as of the newest ping. */
  heard(engine: EngineEntry, now = Date.now()): void {
    engine.lastBeat = now;
    engine.heardAtPing = this.pingSent;
  }

  /**
   * A live heart this controller does not know (an engine declared lost, then resumed, or one
   * registered with an earlier controller on these ports): whether to ask it to register again
   * now, at most once a period each.
   */
  askToRegister(uuid: string, now = Date.now()): boolean {
    if (now - (this.askedToRegister.get(uuid) ?? 0) < this.period) return false;
    if (this.askedToRegister.size > 10_000) this.askedToRegister.clear();
    this.askedToRegister.set(uuid, now);
    return true;
  }

  /**
   * The engines to declare lost, with why: a local one whose process is gone (`exited`), or one
   * that answered none of the last `misses` pings the controller's own heart answered.
   */
  lost(
    engines: Iterable<EngineEntry>,
    exited: (e: EngineEntry) => boolean,
    now = Date.now(),
  ): Array<{ engine: EngineEntry; reason: string }> {
    // A canary that never answered (it could not connect) must not switch the heartbeat off.
    const canaryBroken = this.canaryPing === 0 && this.pingSent > 6 * this.misses;
    const reference = canaryBroken ? this.pingSent : this.canaryPing;
    const out: Array<{ engine: EngineEntry; reason: string }> = [];
    for (const e of engines) {
      if (exited(e)) out.push({ engine: e, reason: `its process ${e.pid} exited` });
      else if (reference - e.heardAtPing > (e.beating ? this.misses : this.misses * FIRST_BEAT_GRACE))
        out.push({
          engine: e,
          reason: `it missed heartbeats: none of the last ${reference - e.heardAtPing} pings answered (silent for ${now - e.lastBeat} ms)`,
        });
    }
    return out;
  }
}
