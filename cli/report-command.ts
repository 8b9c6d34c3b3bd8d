import type { CommandModule } from "yargs";

// Placeholder until its issue lands.
export const reportCommand: CommandModule = {
  command: "report",
  describe: "not implemented yet",
  handler: () => {
    process.stderr.write("ratatoskr report: not implemented yet\n");
    process.exitCode = 2;
  },
};
