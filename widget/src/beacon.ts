/** Widget events, batched into one `navigator.sendBeacon` to `/v1/events`: no cookie, no identifier, survives page unload. */

import type { Offer } from "./api";

// Clicks are not sent from here: the server counts them as they pass through `/v1/go`, with the price.
export type EventType = "impression" | "open" | "search" | "error";
// Offers one answer showed, per retailer and mode: `["shop", "in_store", 3]`.
export type Shown = [string, string, number];

export interface WidgetEvent {
  type: EventType;
  campaign: string;
  gtin: string;
  ts: number;
  retailer?: string;
  mode?: string;
  message?: string;
  shown?: Shown[];
}

/** What a search showed, for the `search` event (an empty list: a search without offers). */
export function shownOffers(offers: Offer[]): Shown[] {
  const counts = new Map<string, Shown>();
  for (const offer of offers) {
    const key = offer.retailer.id + " " + offer.mode;
    const found = counts.get(key);
    if (found) found[2]++;
    else counts.set(key, [offer.retailer.id, offer.mode, 1]);
  }
  return [...counts.values()];
}

const FLUSH_MS = 1000;
// The API bounds a batch; stay under it.
const MAX_BATCH = 50;

export class Beacons {
  private queue: WidgetEvent[] = [];
  private timer = 0;

  constructor(
    private url: string,
    private campaign: string,
  ) {
    const flushNow = () => this.flush();
    addEventListener("pagehide", flushNow);
    document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && flushNow());
  }

  send(type: EventType, gtin: string, extra?: Partial<WidgetEvent>): void {
    // The API refuses a whole batch over one malformed event: send only what it can count.
    if (!this.campaign || !/^\d{8,14}$/.test(gtin)) return;
    this.queue.push({ type, campaign: this.campaign, gtin, ts: Date.now(), ...extra });
    if (this.queue.length >= MAX_BATCH) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS) as unknown as number;
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = 0;
    if (!this.queue.length) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    // A string body goes as text/plain: a CORS-safelisted type, so no preflight and no cookie.
    try {
      navigator.sendBeacon(this.url, JSON.stringify(batch));
    } catch {
      // Beacons are best effort; never let them break the page.
    }
  }
}
