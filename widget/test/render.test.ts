// @vitest-environment happy-dom
import { describe, expect, test } from "vitest";
import type { Offer, OffersAnswer } from "../src/api";
import { words } from "../src/i18n";
import { shownOffers } from "../src/beacon";
import { groupByMode, renderDialog, renderFallback, renderOffers } from "../src/render";

function offer(mode: Offer["mode"], retailer: string, km?: number): Offer {
  return {
    retailer: { id: retailer.toLowerCase(), name: retailer },
    mode,
    store: km === undefined ? null : { id: "s1", name: retailer + " Bastille", city: "Paris", distance_km: km },
    price: { amount: "2.99", currency: "EUR" },
    availability: "in_stock",
    url: "https://api.test/v1/go/" + retailer,
  };
}

const answer = (offers: Offer[]): OffersAnswer => ({
  gtin: "03017620422003",
  location: { source: "postal_code", postal_code: "75011", city: "Paris", country: "FR" },
  offers,
});

describe("grouping", () => {
  test("groups come delivery, click & collect, in store, and keep nearest-first order inside", () => {
    const groups = groupByMode([offer("in_store", "Near", 0.5), offer("delivery", "Web"), offer("in_store", "Far", 9), offer("click_collect", "Drive", 2)]);
    expect(groups.map(([mode]) => mode)).toEqual(["delivery", "click_collect", "in_store"]);
    expect(groups[2][1].map((o) => o.retailer.name)).toEqual(["Near", "Far"]);
  });
  test("a mode without offers has no group", () => {
    expect(groupByMode([offer("delivery", "Web")]).map(([mode]) => mode)).toEqual(["delivery"]);
  });
});

describe("rendering", () => {
  test("each offer is a link to its signed url showing retailer, price, availability and distance", () => {
    const body = document.createElement("div");
    renderOffers(body, answer([offer("in_store", "Carrefour", 1.234)]), words("fr"), "fr");
    const link = body.querySelector("section[data-mode=in_store] a") as HTMLAnchorElement;
    expect(link.getAttribute("href")).toBe("https://api.test/v1/go/Carrefour?m=in_store");
    expect(link.textContent).toContain("Carrefour");
    expect(link.textContent).toMatch(/2,99\s€/);
    expect(link.textContent).toContain("En stock");
    expect(link.textContent).toContain("1,2 km");
    expect(body.querySelector("h3")!.textContent).toBe("En magasin");
  });
  test("a store placed at its postal code's centre says its distance is approximate", () => {
    const placed = offer("in_store", "Carrefour", 3.4);
    placed.store!.approximate = true;
    for (const [locale, about] of [["fr", "environ 3,4 km"], ["en", "about 3.4 km"]] as const) {
      const body = document.createElement("div");
      renderOffers(body, answer([placed, offer("in_store", "Monoprix", 4)]), words(locale), locale);
      expect([...body.querySelectorAll(".km")].map((km) => km.textContent)).toEqual([about, "4 km"]);
    }
  });
  test("an offer its feed has not confirmed for too long says so; a confirmed one does not", () => {
    const stale = offer("in_store", "Carrefour", 1);
    stale.unconfirmed = true;
    for (const [locale, note] of [["fr", "stock non confirmé"], ["en", "stock not confirmed"]] as const) {
      const body = document.createElement("div");
      renderOffers(body, answer([stale, offer("in_store", "Monoprix", 2)]), words(locale), locale);
      const links = [...body.querySelectorAll("a")];
      expect(links.map((a) => a.querySelector(".unc")?.textContent ?? null)).toEqual([note, null]);
      expect(links.map((a) => a.dataset.retailer)).toEqual(["carrefour", "monoprix"]); // the server's order
    }
  });
  test("English prices and headings in English", () => {
    const body = document.createElement("div");
    renderOffers(body, answer([offer("delivery", "Amazon")]), words("en"), "en");
    expect(body.querySelector("h3")!.textContent).toBe("Home delivery");
    expect(body.textContent).toContain("€2.99");
    expect(body.querySelector(".km")).toBeNull();
  });
  test("no offer says so instead of showing an empty list", () => {
    const body = document.createElement("div");
    renderOffers(body, answer([]), words("en"), "en");
    expect(body.textContent).toContain("No retailer has this product near you.");
  });
  test("retailer names are text, never markup", () => {
    const body = document.createElement("div");
    renderOffers(body, answer([offer("delivery", "<img src=x onerror=alert(1)>")]), words("en"), "en");
    expect(body.querySelector("img")).toBeNull();
    expect(body.textContent).toContain("<img src=x");
  });
  test("fallback shows the campaign's web links and drops javascript: ones", () => {
    const body = document.createElement("div");
    renderFallback(body, [{ label: "Amazon", url: "https://www.amazon.example/dp/1" }, "https://shop.example/x", { label: "bad", url: "javascript:alert(1)" }], words("en"));
    const links = Array.from(body.querySelectorAll("a")).map((a) => [a.textContent, a.getAttribute("href")]);
    expect(links).toEqual([
      ["Amazon", "https://www.amazon.example/dp/1"],
      ["shop.example", "https://shop.example/x"],
    ]);
  });
  test("the dialog is a labelled modal with a postal-code form and a location button", () => {
    const dialog = renderDialog(words("en"), "Nutella 400 g");
    expect(dialog.dialog.getAttribute("role")).toBe("dialog");
    expect(dialog.dialog.getAttribute("aria-modal")).toBe("true");
    expect(dialog.dialog.querySelector("#nc-title")!.textContent).toBe("Where to buy");
    expect(dialog.dialog.textContent).toContain("Nutella 400 g");
    expect(dialog.input.name).toBe("postal_code");
    expect(dialog.locate.textContent).toBe("Use my location");
  });
});

describe("statistics", () => {
  test("a store's two modes share a signed link: the href says which row was clicked", () => {
    const body = document.createElement("div");
    renderOffers(body, answer([offer("in_store", "Shop", 1), offer("click_collect", "Shop", 1), offer("delivery", "Web")]), words("en"), "en");
    const hrefs = Array.from(body.querySelectorAll("a")).map((a) => [a.getAttribute("data-mode"), a.getAttribute("href")]);
    expect(hrefs).toEqual([
      ["delivery", "https://api.test/v1/go/Web"],
      ["click_collect", "https://api.test/v1/go/Shop?m=click_collect"],
      ["in_store", "https://api.test/v1/go/Shop?m=in_store"],
    ]);
  });
  test("a search event counts the offers shown per retailer and mode", () => {
    const offers = [offer("in_store", "Shop", 1), offer("in_store", "Shop", 2), offer("delivery", "Shop"), offer("in_store", "Mart", 3)];
    expect(shownOffers(offers)).toEqual([
      ["shop", "in_store", 2],
      ["shop", "delivery", 1],
      ["mart", "in_store", 1],
    ]);
    expect(shownOffers([])).toEqual([]);
  });
});
