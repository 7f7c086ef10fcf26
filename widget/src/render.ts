/** The dialog's DOM: built with createElement only (no innerHTML), so API text can never become markup. */

import type { FallbackLink, Mode, Offer, OffersAnswer } from "./api";
import type { Locale, Words } from "./i18n";

export const MODE_ORDER: Mode[] = ["delivery", "click_collect", "in_store"];

type Child = Node | string | null | false | undefined;

export function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const name in attrs) el.setAttribute(name, attrs[name]);
  for (const child of children) if (child) el.append(child);
  return el;
}

/** Offers by mode, in the order a shopper scans them; each group keeps the API's order (nearest store first). */
export function groupByMode(offers: Offer[]): [Mode, Offer[]][] {
  return MODE_ORDER.map((mode): [Mode, Offer[]] => [mode, offers.filter((offer) => offer.mode === mode)]).filter(
    ([, group]) => group.length > 0,
  );
}

export function formatPrice(price: Offer["price"], locale: Locale): string {
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: price.currency }).format(+price.amount);
  } catch {
    return price.amount + " " + price.currency;
  }
}

export function formatDistance(km: number, locale: Locale): string {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: km < 10 ? 1 : 0 }).format(km) + " km";
}

export interface Dialog {
  backdrop: HTMLElement;
  dialog: HTMLElement;
  close: HTMLElement;
  form: HTMLFormElement;
  input: HTMLInputElement;
  locate: HTMLElement;
  body: HTMLElement;
}

export function renderDialog(w: Words, product: string): Dialog {
  const close = h("button", { type: "button", class: "x", "aria-label": w.close }, "×");
  const input = h("input", {
    name: "postal_code",
    autocomplete: "postal-code",
    inputmode: "numeric",
    maxlength: "10",
    required: "",
  }) as HTMLInputElement;
  const locate = h("button", { type: "button", class: "alt" }, w.locate);
  const form = h(
    "form",
    { class: "where" },
    h("label", {}, w.postal, input),
    h("button", { type: "submit" }, w.search),
    locate,
  ) as HTMLFormElement;
  const body = h("div", { class: "body", "aria-live": "polite" });
  const dialog = h(
    "div",
    { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "nc-title", tabindex: "-1" },
    h("header", {}, h("h2", { id: "nc-title" }, w.title), close),
    product && h("p", { class: "product" }, product),
    form,
    body,
  );
  return { backdrop: h("div", { class: "backdrop" }, dialog), dialog, close, form, input, locate, body };
}

export function renderMessage(body: HTMLElement, text: string): void {
  body.replaceChildren(h("p", { class: "msg" }, text));
}

/** Both modes of one store share a signed link: `m` tells the server's click count which row was chosen. */
export function offerHref(offer: Offer): string {
  return offer.store ? offer.url + (offer.url.includes("?") ? "&" : "?") + "m=" + offer.mode : offer.url;
}

function offerLink(offer: Offer, w: Words, locale: Locale): HTMLElement {
  const store = offer.store;
  return h(
    "li",
    {},
    h(
      "a",
      { href: offerHref(offer), target: "_blank", rel: "noopener", "data-mode": offer.mode, "data-retailer": offer.retailer.id },
      h("span", { class: "who" }, h("b", {}, offer.retailer.name), store && h("span", {}, store.name + (store.city ? ", " + store.city : ""))),
      h(
        "span",
        { class: "what" },
        h("b", {}, formatPrice(offer.price, locale)),
        h("span", { class: offer.availability }, w[offer.availability] || offer.availability),
        offer.unconfirmed && h("span", { class: "unc" }, w.unconfirmed),
        store && h("span", { class: "km" }, (store.approximate ? w.about + " " : "") + formatDistance(store.distance_km, locale)),
      ),
    ),
  );
}

export function renderOffers(body: HTMLElement, answer: OffersAnswer, w: Words, locale: Locale): void {
  const groups = groupByMode(answer.offers);
  const where = answer.location && (answer.location.city || answer.location.postal_code);
  body.replaceChildren(
    where ? h("p", { class: "near" }, w.located + " " + where) : "",
    ...(groups.length
      ? groups.map(([mode, offers]) =>
          h(
            "section",
            { "data-mode": mode, "aria-labelledby": "nc-" + mode },
            h("h3", { id: "nc-" + mode }, w[mode]),
            h("ul", {}, ...offers.map((offer) => offerLink(offer, w, locale))),
          ),
        )
      : [h("p", { class: "msg" }, w.none)]),
  );
}

function linkOf(link: FallbackLink | string): FallbackLink {
  return typeof link === "string" ? { url: link } : link;
}

/** Shown when the API cannot answer: the campaign's online links, never an endless spinner. */
export function renderFallback(body: HTMLElement, links: (FallbackLink | string)[], w: Words): void {
  const safe = links.map(linkOf).filter((link) => /^https?:\/\//.test(link.url));
  body.replaceChildren(
    h("p", { class: "msg" }, w.down),
    h(
      "ul",
      { class: "fallback" },
      ...safe.map((link) =>
        h("li", {}, h("a", { href: link.url, target: "_blank", rel: "noopener" }, link.label || link.name || new URL(link.url).hostname)),
      ),
    ),
  );
}
