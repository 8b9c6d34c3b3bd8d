// Stages the production dependency tree into a Docker build context.
//   node scripts/docker-stage-modules.mjs <dest node_modules dir>
// Reads the tree from `npm ls --omit=dev --all --parseable` (read-only) and hard-links every
// file of each listed package into <dest>, skipping the package's nested node_modules (npm lists
// the nested packages that are needed on their own lines). Falls back to copying when the
// destination is on another filesystem.
import { execFileSync } from "node:child_process";
import { copyFileSync, linkSync, mkdirSync, readdirSync, readlinkSync, symlinkSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const dest = process.argv[2];
if (!dest) {
  console.error("usage: node scripts/docker-stage-modules.mjs <dest node_modules dir>");
  process.exit(2);
}
const root = process.cwd();
const modules = join(root, "node_modules");

let out;
try {
  out = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
} catch (err) {
  // npm ls exits non-zero on extraneous or invalid packages but still prints the tree.
  out = err.stdout ?? "";
}
const packages = out.split("\n").map((l) => l.trim()).filter((l) => l.startsWith(modules + "/"));
if (packages.length === 0) {
  console.error("npm ls listed no production packages; is node_modules installed?");
  process.exit(1);
}

let files = 0;
function place(src, dst) {
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
  files += 1;
}
function copyTree(src, dst) {
  mkdirSync(dst, { recursive: true });
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue;
    const s = join(src, entry.name);
    const d = join(dst, entry.name);
    if (entry.isDirectory()) copyTree(s, d);
    else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(s), d);
    else if (entry.isFile()) place(s, d);
  }
}
for (const pkg of packages) copyTree(pkg, join(resolve(dest), relative(modules, pkg)));
console.log(`staged ${packages.length} production packages (${files} files) into ${dest}`);
