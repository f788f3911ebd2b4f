// Builds the chat page into web/dist: one bundled, minified app.js plus the
// static files. `npm run build:web` type-checks first (tsc), then runs this.
// `config.json` holds the page's operator settings, with the defaults below;
// the local static server (mesh/static_site.py) replaces them from
// MEND_HANDOFF_URL / MEND_HANDOFF_LABEL, and any server may serve its own.
import { build } from "esbuild";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Where a customer reaches a person when the bot does not know: the sample
// brand's care address (the bot's MEND_HANDOFF text names the same one).
const DEFAULT_CONFIG = {
  handoffUrl: "mailto:care@alderandfinch.example",
  handoffLabel: "Contact our team",
};

const web = dirname(fileURLToPath(import.meta.url));
const dist = join(web, "dist");
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(web, "src", "main.ts")],
  outfile: join(dist, "app.js"),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: "es2022",
  logLevel: "warning",
});
for (const file of ["index.html", "styles.css"]) await copyFile(join(web, file), join(dist, file));
await writeFile(join(dist, "config.json"), `${JSON.stringify(DEFAULT_CONFIG, null, 2)}\n`);
console.log(`web: built ${dist}`);
