// Copy the browser dependencies the portal serves into ../static/vendor (generated, gitignored).
// Run by scripts/bootstrap and by hatch_build.py after `npm ci`; needs nothing but node.
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "static", "vendor");
const hls = join(here, "node_modules", "hls.js");
const tus = join(here, "node_modules", "tus-js-client");

// The full build (not hls.light): it has the WebVTT subtitle support. The worker file lets the
// page run hls.js's transmuxer in a same-origin worker (CSP worker-src 'self', no blob: workers).
// Source maps are not shipped, so their comments go (DevTools would ask for a missing file).
const files = [
  [join(hls, "dist", "hls.min.js"), "hls.min.js", true],
  [join(hls, "dist", "hls.worker.js"), "hls.worker.js", true],
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
