// Print the bundle's raw, gzip and brotli sizes and the change since size-baseline.json; exit 1 above the budget.
// `npm run size -- --update` records the current sizes as the new baseline.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const BUDGET_GZIP = 12 * 1024;
const code = readFileSync(new URL("../dist/nearcart.js", import.meta.url));
const now = {
  raw: code.length,
  gzip: gzipSync(code, { level: 9 }).length,
  brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
};
const baselineFile = new URL("../size-baseline.json", import.meta.url);
const before = existsSync(baselineFile) ? JSON.parse(readFileSync(baselineFile, "utf8")) : {};
const delta = (n, b) => (b === undefined ? "" : ` (${n - b >= 0 ? "+" : ""}${n - b} B)`);
console.log("| file | raw | gzip | brotli |");
console.log("|---|---|---|---|");
console.log(
  `| nearcart.js | ${now.raw} B${delta(now.raw, before.raw)} | ${now.gzip} B${delta(now.gzip, before.gzip)} | ` +
    `${now.brotli} B${delta(now.brotli, before.brotli)} |`,
);
console.log(`budget: ${now.gzip} / ${BUDGET_GZIP} B gzip before the first click`);
if (process.argv.includes("--update")) writeFileSync(baselineFile, JSON.stringify(now, null, 2) + "\n");
if (now.gzip > BUDGET_GZIP) {
  console.error(`over budget by ${now.gzip - BUDGET_GZIP} B gzip`);
  process.exit(1);
}
