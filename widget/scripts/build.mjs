// Bundle and minify the widget into dist/: the entry file, a content-hashed copy, their gzip and brotli
// twins (served precompressed by the API and nginx) and manifest.json with each file's SRI hash.
import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { build } from "esbuild";

const dist = new URL("../dist/", import.meta.url);
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

const result = await build({
  entryPoints: [new URL("../src/main.ts", import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2019",
  legalComments: "none",
  write: false,
});
const code = result.outputFiles[0].contents;

const hash = createHash("sha256").update(code).digest("hex").slice(0, 12);
const integrity = "sha384-" + createHash("sha384").update(code).digest("base64");
const hashed = `nearcart.${hash}.js`;
// gzip level 9 and brotli 11: compressed once at build time, so the CDN never compresses on the fly.
const gz = gzipSync(code, { level: 9 });
const br = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
for (const name of ["nearcart.js", hashed]) {
  writeFileSync(new URL(name, dist), code);
  writeFileSync(new URL(name + ".gz", dist), gz);
  writeFileSync(new URL(name + ".br", dist), br);
}
const manifest = {
  "nearcart.js": { file: hashed, integrity, bytes: code.length, gzip_bytes: gz.length, brotli_bytes: br.length },
};
writeFileSync(new URL("manifest.json", dist), JSON.stringify(manifest, null, 2) + "\n");
console.log(`dist/${hashed}  ${code.length} B, ${gz.length} B gzip  ${integrity}`);
