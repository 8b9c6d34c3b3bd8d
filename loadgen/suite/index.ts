/**
 * suite/: `ratatoskr bench-suite`. A set file of scenarios × drivers, one `ratatoskr bench`
 * child per run, then the side-by-side comparison. Other folders enter here.
 */
export { loadSet, runSuite, setSchema, MANIFEST_FILE, type SuiteArgs, type SuiteManifest, type SuiteRun, type SuiteSet, type RunRecord } from "./run.js";
export { isSuiteDir, readSuite, renderSuiteMarkdown, writeSuiteComparison, type SuiteView } from "./render.js";
