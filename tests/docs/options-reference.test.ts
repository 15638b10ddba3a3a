/** The README's options tables are generated from the registries; this keeps them current. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createConnectors } from "../../src/backends/index.js";
import { silentLogger } from "../../src/core/logger.js";
import { DOCS_BEGIN, DOCS_END, renderOptionsReference, replaceOptionsBlock } from "../../src/options/docs.js";

describe("README options reference", () => {
  it("matches the option registries (run `npm run docs` to update)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const connectors = [...createConnectors(silentLogger).values()];
    const expected = replaceOptionsBlock(readme, renderOptionsReference(connectors));
    expect(readme.includes(DOCS_BEGIN) && readme.includes(DOCS_END)).toBe(true);
    expect(readme).toBe(expected);
    for (const connector of connectors) expect(readme).toContain(`### \`format("${connector.format}")\``);
  });
});
