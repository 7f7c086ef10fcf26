/**
 * nearcart widget entry: reads the script tag, wires every `[data-nearcart-gtin]` element (now or later) through
 * event delegation, and exposes `window.NearCart` — the only global it adds. Every handler runs inside `guard`,
 * so an error becomes an `error` beacon and never reaches the host page.
 */

import { type Campaign, type OffersAnswer, type Place, campaignURL, getJSON, offersURL } from "./api";
import { Beacons, shownOffers } from "./beacon";
import { type Locale, type Words, pickLocale, words } from "./i18n";
import { type Dialog, renderDialog, renderFallback, renderMessage, renderOffers } from "./render";
import { CSS, adopt } from "./styles";
import { overlayVideo } from "./video";

type Call = ArrayLike<unknown>;
interface NearCartGlobal {
  open(gtin: string): void;
  close(): void;
  loaded?: boolean;
  q?: Call[];
}

const SELECTOR = "[data-nearcart-gtin]";
// A prefetched answer is reused for a click within this window, then asked again.
const PREFETCH_TTL_MS = 60_000;

function start(win: Window & { NearCart?: NearCartGlobal }): void {
  // Script included twice: the first copy owns the page.
  if (win.NearCart && win.NearCart.loaded) return;
  const queued = (win.NearCart && win.NearCart.q) || [];

  const script = (document.currentScript ||
    document.querySelector('script[src*="nearcart"][data-campaign]')) as HTMLScriptElement | null;
  const data = (script && script.dataset) || {};
  const campaignId = data.campaign || "";
  const api = (data.api || (script && script.src ? new URL(script.src, location.href).origin : location.origin)).replace(/\/$/, "");
  const beacons = new Beacons(api + "/v1/events", campaignId);

  let currentGtin = "";
  const report = (error: unknown) => beacons.send("error", currentGtin, { message: String(error).slice(0, 200) });
  const guard =
    <A extends unknown[]>(fn: (...args: A) => unknown) =>
    (...args: A): void => {
      try {
        const result = fn(...args);
        if (result instanceof Promise) result.catch(report);
      } catch (error) {
        report(error);
      }
    };

  // The campaign is read at load time, in parallel, so it never adds a request after the click.
  let campaign: Campaign | null = null;
  const campaignReady: Promise<Campaign | null> = campaignId
    ? getJSON<Campaign>(campaignURL(api, campaignId)).then(
        (found) => (campaign = found),
        () => null,
      )
    : Promise.resolve(null);

  let place: Place = null;
  let country = "";
  const answers = new Map<string, [number, Promise<OffersAnswer>]>();
  const offers = (gtin: string): Promise<OffersAnswer> => {
    const url = offersURL(api, gtin, campaignId, place);
    const cached = answers.get(url);
    if (cached && Date.now() - cached[0] < PREFETCH_TTL_MS) return cached[1];
    const answer = getJSON<OffersAnswer>(url);
    answers.set(url, [Date.now(), answer]);
    // A failed answer is not kept: the next click asks again.
    answer.catch(() => answers.delete(url));
    return answer;
  };

  const locale = (): Locale => pickLocale(campaign && campaign.locale, data.locale, navigator.language);
  const t = (): Words => words(locale());

  let host: HTMLElement | null = null;
  let shadow: ShadowRoot;
  let dialog: Dialog | null = null;
  let builtFor = "";
  let opener: Element | null = null;

  const applyTheme = () => {
    const theme = (campaign && campaign.theme) || {};
    const radius = theme.border_radius;
    const props: [string, unknown][] = [
      ["--nc-primary", theme.primary_color],
      ["--nc-font", theme.font_family],
      ["--nc-radius", typeof radius === "number" ? radius + "px" : radius],
    ];
    for (const [name, value] of props) {
      // Set through CSSOM, not CSS text: a theme value cannot inject rules, and CSP allows it.
      if (typeof value === "string" && value.length < 200) {
        host!.style.setProperty(name, value);
        for (const overlay of document.querySelectorAll("nearcart-buy")) (overlay as HTMLElement).style.setProperty(name, value);
      }
    }
  };

  const productLabel = (gtin: string): string => {
    const products = (campaign && campaign.products) || [];
    const wanted = gtin.padStart(14, "0");
    const product = products.find((p) => String(p.gtin).padStart(14, "0") === wanted);
    return (product && product.label) || "";
  };

  const focusables = (): HTMLElement[] =>
    dialog ? Array.from(dialog.dialog.querySelectorAll<HTMLElement>("a[href],button,input")) : [];

  const build = () => {
    if (!host) {
      host = document.createElement("nearcart-widget");
      shadow = host.attachShadow({ mode: "open" });
      adopt(shadow, CSS);
      shadow.addEventListener("keydown", guard(onKey) as EventListener);
      shadow.addEventListener("click", guard(onClick) as EventListener);
      document.body.append(host);
    }
    applyTheme();
    builtFor = locale();
    const w = t();
    dialog = renderDialog(w, productLabel(currentGtin));
    dialog.close.addEventListener("click", guard(close));
    dialog.form.addEventListener(
      "submit",
      guard((event: Event) => {
        event.preventDefault();
        place = { postal_code: dialog!.input.value.trim(), country: country || "FR" };
        show(currentGtin);
      }),
    );
    dialog.locate.addEventListener("click", guard(locate));
    shadow.replaceChildren(dialog.backdrop);
    host.hidden = false;
    dialog.dialog.focus();
  };

  const show = async (gtin: string) => {
    renderMessage(dialog!.body, t().loading);
    const pending = offers(gtin);
    let answer: OffersAnswer;
    try {
      answer = await pending;
    } catch (error) {
      await campaignReady;
      if (gtin !== currentGtin) return;
      renderFallback(dialog!.body, (campaign && campaign.fallback_links) || [], t());
      report(error);
      return;
    }
    await campaignReady;
    if (gtin !== currentGtin) return;
    // The campaign arrived after the click and speaks another language: rebuild the dialog in it.
    if (builtFor !== locale()) build();
    if (answer.location && answer.location.country) country = answer.location.country;
    renderOffers(dialog!.body, answer, t(), locale());
    beacons.send("search", gtin, { shown: shownOffers(answer.offers || []) });
  };

  const locate = () => {
    const geo = navigator.geolocation;
    const fail = () => renderMessage(dialog!.body, t().noGeo);
    if (!geo) return fail();
    renderMessage(dialog!.body, t().loading);
    geo.getCurrentPosition(
      guard((position: GeolocationPosition) => {
        // Two decimals (about 1 km) are enough to rank stores and say little about the shopper.
        const round = (x: number) => Math.round(x * 100) / 100;
        place = { lat: round(position.coords.latitude), lon: round(position.coords.longitude) };
        return show(currentGtin);
      }),
      fail,
      { timeout: 10_000, maximumAge: 600_000 },
    );
  };

  const open = (gtin: string, from?: Element | null) => {
    gtin = String(gtin || "").trim();
    if (!gtin) return;
    opener = from || document.activeElement;
    currentGtin = gtin;
    offers(gtin); // in flight before any DOM work
    build();
    document.dispatchEvent(new CustomEvent("nearcart:open", { detail: { gtin } }));
    beacons.send("open", gtin);
    return show(gtin);
  };

  const close = () => {
    if (!host || host.hidden) return;
    host.hidden = true;
    const gtin = currentGtin;
    currentGtin = "";
    document.dispatchEvent(new CustomEvent("nearcart:close", { detail: { gtin } }));
    beacons.flush();
    if (opener && opener.isConnected && "focus" in opener) (opener as HTMLElement).focus();
  };

  function onKey(event: KeyboardEvent) {
    if (event.key === "Escape") {
      event.stopPropagation();
      return close();
    }
    if (event.key !== "Tab") return;
    // Focus trap: Tab from the last control wraps to the first, Shift+Tab from the first to the last.
    const items = focusables();
    const active = shadow.activeElement;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (active === first || active === dialog!.dialog)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  }

  function onClick(event: MouseEvent) {
    const target = event.target as Element;
    if (target === dialog!.backdrop) return close();
    const link = target.closest("a[data-retailer]");
    if (!link) return;
    const detail = {
      gtin: currentGtin,
      retailer: link.getAttribute("data-retailer") || "",
      mode: link.getAttribute("data-mode") || "",
      url: link.getAttribute("href"),
    };
    // The click itself is counted by the server (`/v1/go`); what this search showed goes now.
    beacons.flush();
    document.dispatchEvent(new CustomEvent("nearcart:click", { detail }));
  }

  const buyTarget = (event: Event): Element | null => {
    const target = event.target;
    const found = target instanceof Element ? target.closest(SELECTOR) : null;
    return found && found.tagName !== "VIDEO" ? found : null;
  };

  const seen = new WeakSet<Element>();
  const visible =
    "IntersectionObserver" in win
      ? new IntersectionObserver(
          guard((entries: IntersectionObserverEntry[]) => {
            for (const entry of entries) {
              if (!entry.isIntersecting) continue;
              visible!.unobserve(entry.target);
              beacons.send("impression", entry.target.getAttribute("data-nearcart-gtin") || "");
            }
          }),
        )
      : null;

  const scan = (root: Element) => {
    const found = root.matches(SELECTOR) ? [root] : [];
    for (const el of [...found, ...root.querySelectorAll(SELECTOR)]) {
      if (seen.has(el)) continue;
      seen.add(el);
      if (visible) visible.observe(el);
      if (el.tagName === "VIDEO") overlayVideo(el as HTMLVideoElement, () => t().buy, open, guard);
    }
  };

  const ready = guard(() => {
    document.addEventListener(
      "click",
      guard((event: MouseEvent) => {
        const button = buyTarget(event);
        if (!button) return;
        event.preventDefault();
        return open(button.getAttribute("data-nearcart-gtin") || "", button);
      }),
      true,
    );
    // Prefetch when the shopper points at or tabs to a button: the click then finds its answer in flight.
    const prefetch = guard((event: Event) => {
      const button = buyTarget(event);
      if (button) offers(button.getAttribute("data-nearcart-gtin") || "");
    });
    document.addEventListener("pointerover", prefetch, true);
    document.addEventListener("focusin", prefetch, true);
    scan(document.documentElement);
    new MutationObserver(
      guard((records: MutationRecord[]) => {
        for (const record of records)
          for (const node of record.addedNodes) if (node instanceof Element && node.tagName !== "NEARCART-BUY") scan(node);
      }),
    ).observe(document.documentElement, { childList: true, subtree: true });
    campaignReady.then(guard(() => host && applyTheme()));
    if (data.open) open(data.open);
    // Calls made before the script loaded, e.g. `NearCart.q.push(["open", "3017620422003"])`.
    for (const call of queued) {
      const [method, gtin] = Array.from(call) as string[];
      if (method === "open") open(gtin);
      else if (method === "close") close();
    }
  });

  const api_: NearCartGlobal = {
    open: guard((gtin: string) => open(gtin)),
    close: guard(close),
    loaded: true,
  };
  win.NearCart = api_;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
}

try {
  start(window);
} catch {
  // Never throw into the host page, even on a browser we did not foresee.
}
