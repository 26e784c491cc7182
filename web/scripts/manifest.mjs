// Writes api/static/build-manifest.json after `vite build`: the hash of every input of the
// build (tests/test_web_build.py recomputes it, so a change to the client's sources without a
// new build fails the suite) and the gzipped size of the JavaScript the app's first load fetches.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { gzipSync } from "node:zlib";

const web = resolve(import.meta.dirname, "..");
const root = resolve(web, "..");
const out = resolve(root, "api/static");

// Keep in step with tests/test_web_build.py: BUILD_INPUTS.
const INPUT_FILES = [
  "queries/schema.graphql",
  "web/package.json",
  "web/package-lock.json",
  "web/index.html",
  "web/graphiql.html",
  "web/vite.config.ts",
  "web/codegen.ts",
  "web/tsconfig.json",
];
const INPUT_DIRS = ["web/src", "web/public"];
const isTest = (path) => /\.test\.tsx?$/.test(path) || path.endsWith("test-setup.ts");

function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

export function buildInputs() {
  const files = [
    ...INPUT_FILES.map((f) => resolve(root, f)),
    ...INPUT_DIRS.flatMap((d) => walk(resolve(root, d))),
  ]
    .map((f) => relative(root, f).split(sep).join("/"))
    .filter((f) => !isTest(f) && !f.startsWith("web/src/gql/"))
    .sort();
  const digest = createHash("sha256");
  for (const file of files) {
    const content = createHash("sha256").update(readFileSync(resolve(root, file))).digest("hex");
    digest.update(`${file}\0${content}\n`);
  }
  return { files, sha256: digest.digest("hex") };
}

const html = readFileSync(join(out, "index.html"), "utf8");
const scripts = [...html.matchAll(/<(?:script|link)[^>]+(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map(
  (m) => m[1],
);
const firstLoad = Object.fromEntries(
  scripts.map((file) => [file, gzipSync(readFileSync(join(out, file)), { level: 9 }).length]),
);
const inputs = buildInputs();
const manifest = {
  sources_sha256: inputs.sha256,
  sources: inputs.files.length,
  first_load_js_gzip_bytes: Object.values(firstLoad).reduce((a, b) => a + b, 0),
  first_load_js: firstLoad,
};
writeFileSync(join(out, "build-manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `build-manifest.json: sources ${inputs.sha256.slice(0, 12)} (${inputs.files.length} files), ` +
    `first load ${(manifest.first_load_js_gzip_bytes / 1024).toFixed(1)} KiB of gzipped JavaScript`,
);
