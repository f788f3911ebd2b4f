// Builds the chat page into web/dist: one bundled, minified app.js plus the
// static files. `npm run build:web` type-checks first (tsc), then runs this.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
console.log(`web: built ${dist}`);
