import { describe, expect, test } from "vitest";
import { pickLocale, words } from "../src/i18n";

describe("locale", () => {
  test("campaign locale wins over data-locale and the browser", () => {
    expect(pickLocale("fr", "en", "en-US")).toBe("fr");
  });
  test("data-locale is used when the campaign has none", () => {
    expect(pickLocale(undefined, "fr", "en-GB")).toBe("fr");
  });
  test("browser language with a region is understood", () => {
    expect(pickLocale(null, "", "fr-BE")).toBe("fr");
  });
  test("an unknown language falls through to the next candidate, then English", () => {
    expect(pickLocale("de", "fr")).toBe("fr");
    expect(pickLocale("de", "", "ja-JP")).toBe("en");
  });
  test("every English phrase has a French translation", () => {
    const en = words("en");
    const fr = words("fr");
    for (const key of Object.keys(en) as (keyof typeof en)[]) expect(fr[key], key).toBeTruthy();
    expect(fr.title).toBe("Où acheter");
  });
});
