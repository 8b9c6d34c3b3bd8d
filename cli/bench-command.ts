import type { CommandModule } from "yargs";

// Placeholder until its issue lands.
export const benchCommand: CommandModule = {
  command: "bench",
  describe: "not implemented yet",
  handler: () => {
    process.stderr.write("ratatoskr bench: not implemented yet\n");
    process.exitCode = 2;
  },
};
