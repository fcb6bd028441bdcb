// Build the portal's static files (all outputs generated and gitignored; run by scripts/bootstrap
// and by hatch_build.py after `npm ci`):
//   1. copy the browser dependencies the portal serves into ../static/vendor;
//   2. minify our own scripts (../static/*.js) with esbuild into ../static/min (asset_url serves
//      them instead of the sources when they are not older);
//   3. precompress every servable static file with Brotli (quality 11) and gzip (level 9) into
//      ../static_compressed/<path>.br|.gz, which the static handler sends to browsers that
//      accept them — nothing is compressed per request.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { buildSync } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "static", "vendor");
const hls = join(here, "node_modules", "hls.js");
const tus = join(here, "node_modules", "tus-js-client");

// The full build (not hls.light): it has the WebVTT subtitle support, audio groups and content
// steering. No worker: our ladders are fMP4 (CMAF), which hls.js only passes through, so the
// transmuxer runs on the page (enableWorker: false) and the lesson page ships 40 kB less.
// Source maps are not shipped, so their comments go (DevTools would ask for a missing file).
const files = [
  [join(hls, "dist", "hls.min.js"), "hls.min.js", true],
  [join(hls, "LICENSE"), "hls.js.LICENSE.txt", false],
  // The instructor's resumable lecture upload (tus 1.0, resumes after a page reload).
  [join(tus, "dist", "tus.min.js"), "tus.min.js", true],
  [join(tus, "LICENSE"), "tus-js-client.LICENSE.txt", false],
];
// axe-core is a devDependency: the accessibility tests load it into the page, it is never served.

mkdirSync(vendor, { recursive: true });
for (const [source, name, script] of files) {
  const target = join(vendor, name);
  const tmp = `${target}.tmp`;
  if (script) {
    const text = readFileSync(source, "utf8").replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
    writeFileSync(tmp, text);
  } else {
    copyFileSync(source, tmp);
  }
  renameSync(tmp, target);
}
const versionOf = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
writeFileSync(join(vendor, "VERSIONS.txt"), `hls.js ${versionOf(hls)}\ntus-js-client ${versionOf(tus)}\n`);

// 2. our scripts, minified (same names under static/min)
const staticDir = join(here, "..", "static");
const own = readdirSync(staticDir).filter((name) => name.endsWith(".js")).map((name) => join(staticDir, name));
buildSync({ entryPoints: own, outdir: join(staticDir, "min"), minify: true, target: "es2020", logLevel: "error" });

// 3. precompressed copies of everything servable
const compressed = join(here, "..", "static_compressed");
const COMPRESS = new Set([".js", ".mjs", ".css", ".svg", ".json", ".txt", ".vtt", ".ico"]);
function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (COMPRESS.has(extname(entry.name))) yield path;
  }
}
for (const source of walk(staticDir)) {
  const body = readFileSync(source);
  const target = join(compressed, relative(staticDir, source));
  mkdirSync(dirname(target), { recursive: true });
  const br = brotliCompressSync(body, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  for (const [suffix, data] of [[".br", br], [".gz", gzipSync(body, { level: 9 })]]) {
    if (data.length < body.length) {
      writeFileSync(`${target}${suffix}.tmp`, data);
      renameSync(`${target}${suffix}.tmp`, `${target}${suffix}`);
    }
  }
}
