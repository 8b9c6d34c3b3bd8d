import type { CommandModule } from "yargs";

// Placeholder until its issue lands.
export const brokerCommand: CommandModule = {
  command: "broker",
  describe: "not implemented yet",
  handler: () => {
    process.stderr.write("ratatoskr broker: not implemented yet\n");
    process.exitCode = 2;
  },
};
