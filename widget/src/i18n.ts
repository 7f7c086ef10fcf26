/** Shopper-facing words in French and English; the locale comes from the campaign, the script tag, then the browser. */

export type Locale = "fr" | "en";

const en = {
  title: "Where to buy",
  close: "Close",
  delivery: "Home delivery",
  click_collect: "Click & collect",
  in_store: "In store",
  in_stock: "In stock",
  low_stock: "Low stock",
  postal: "Postal code",
  search: "Search",
  locate: "Use my location",
  loading: "Looking for offers near you…",
  none: "No retailer has this product near you.",
  down: "Offers are unavailable right now. Buy online:",
  located: "Near",
  noGeo: "Your location is unavailable.",
  buy: "Buy",
  about: "about",
  unconfirmed: "stock not confirmed",
};

export type Words = typeof en;

const fr: Words = {
  title: "Où acheter",
  close: "Fermer",
  delivery: "Livraison à domicile",
  click_collect: "Retrait en magasin",
  in_store: "En magasin",
  in_stock: "En stock",
  low_stock: "Stock faible",
  postal: "Code postal",
  search: "Rechercher",
  locate: "Utiliser ma position",
  loading: "Recherche des offres près de chez vous…",
  none: "Aucun magasin n’a ce produit près de chez vous.",
  down: "Les offres sont indisponibles pour le moment. Acheter en ligne :",
  located: "Près de",
  noGeo: "Votre position est indisponible.",
  buy: "Acheter",
  about: "environ",
  unconfirmed: "stock non confirmé",
};

const dictionaries: Record<Locale, Words> = { en, fr };

/** The first candidate we speak ("fr-BE" counts as "fr"); English when none. */
export function pickLocale(...candidates: (string | null | undefined)[]): Locale {
  for (const candidate of candidates) {
    const lang = (candidate || "").slice(0, 2).toLowerCase();
    if (lang in dictionaries) return lang as Locale;
  }
  return "en";
}

export function words(locale: Locale): Words {
  return dictionaries[locale];
}
