// vitest globalSetup for the e2e project: refuse to run, with one line, when no Docker engine
// is reachable or the broker image has not been built. (Each suite also awaits
// requireDockerAndImage() at load time, so the guard holds without this file too.)
import { statSync } from "node:fs";
import { BROKER_IMAGE, dockerUnreachableReason, HOW_TO_START_DOCKER, imageCreatedMs, imageExists } from "./support/docker-engine.js";

export default async function setup(): Promise<void> {
  const reason = await dockerUnreachableReason();
  if (reason !== null) {
    process.stderr.write(`e2e: ${reason}: ${HOW_TO_START_DOCKER}\n`);
    process.exit(1);
  }
  if (!(await imageExists(BROKER_IMAGE))) {
    process.stderr.write(`e2e: Docker image ${BROKER_IMAGE} is missing: build it with \`bash scripts/build-images.sh\`\n`);
    process.exit(1);
  }
  // The suites test the image, not the working tree: say so when the image is older than dist/.
  try {
    const built = await imageCreatedMs(BROKER_IMAGE);
    if (statSync("dist/cli/main.js").mtimeMs > built + 1_000) {
      process.stderr.write(`e2e: note: ${BROKER_IMAGE} is older than dist/; rebuild it with \`bash scripts/build-images.sh\` to test the current code\n`);
    }
  } catch {
    // no dist/ here: nothing to compare
  }
}
