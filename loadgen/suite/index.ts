/**
 * suite/: `ratatoskr bench-suite`. A set file of scenarios × drivers (set.ts), one `ratatoskr
 * bench` child per run (run.ts), then the side-by-side comparison (compare.ts, render.ts).
 * Other folders enter here.
 */
export { loadSet, setSchema, type SuiteRun, type SuiteSet } from "./set.js";
export { runSuite, MANIFEST_FILE, type SuiteArgs, type SuiteManifest, type RunRecord } from "./run.js";
export { isSuiteDir, readSuite, renderSuiteMarkdown, writeSuiteComparison, type SuiteView } from "./render.js";
