/** The one request on the click path (`/v1/offers`) and the campaign read at load time, both with a 2 s deadline. */

export type Mode = "delivery" | "click_collect" | "in_store";

export interface Offer {
  retailer: { id: string; name: string; logo_url?: string };
  mode: Mode;
  // approximate: the store was placed at its postal code's centre (only sent when true).
  store: { id: string; name: string; address?: string; postal_code?: string; city?: string; approximate?: boolean; distance_km: number } | null;
  price: { amount: string; currency: string };
  availability: "in_stock" | "low_stock";
  // unconfirmed: the retailer's feed has not confirmed this offer for too long (only sent when true).
  unconfirmed?: boolean;
  url: string;
}

export interface OffersAnswer {
  gtin: string;
  location: { source: string; postal_code?: string | null; city?: string | null; country?: string | null };
  offers: Offer[];
}

export interface FallbackLink {
  label?: string;
  name?: string;
  url: string;
}

export interface Campaign {
  id?: string;
  locale?: string;
  products?: { gtin: string; label?: string }[];
  modes?: Mode[];
  theme?: { primary_color?: string; font_family?: string; border_radius?: string | number };
  fallback_links?: (FallbackLink | string)[];
}

/** Where the shopper is, as the API takes it: nothing (IP), a postal code, or coordinates. */
export type Place = { postal_code: string; country: string } | { lat: number; lon: number } | null;

const TIMEOUT_MS = 2000;

export async function getJSON<T>(url: string): Promise<T> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    // credentials "omit": no cookie goes to the API, so nothing can identify the shopper.
    const response = await fetch(url, { signal: abort.signal, credentials: "omit" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return (await response.json()) as T;
  } finally {
    clearTimeout(timer);
  }
}

export function offersURL(api: string, gtin: string, campaign: string, place: Place): string {
  const query = new URLSearchParams({ gtin });
  if (campaign) query.set("campaign", campaign);
  if (place) for (const [key, value] of Object.entries(place)) query.set(key, String(value));
  return api + "/v1/offers?" + query;
}

export function campaignURL(api: string, campaign: string): string {
  return api + "/v1/campaigns/" + encodeURIComponent(campaign);
}
