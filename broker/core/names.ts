import type { TopicNameProblem } from "./errors.js";

export const MAX_NAME_LENGTH = 255;
const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Topic and subscription names: 1–255 characters of [A-Za-z0-9_-]. Returns the problem, if any. */
export function checkName(name: string): TopicNameProblem | undefined {
  if (name.length === 0) return "empty";
  if (name.length > MAX_NAME_LENGTH) return "too_long";
  if (!NAME_PATTERN.test(name)) return "invalid_format";
  return undefined;
}
