// Live: `createCollection(name, { shards })` makes a sharded collection, which is filled and
// searched like any other. Needs a server with collections (`serve --data-dir`, as
// scripts/clients_test.sh runs it).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { HybridSearchClient, HybridSearchError, RetrievalMode } from "../src/index.js";

const addr = process.env.HYBRIDSEARCH_ADDR;
const skip = addr ? false : "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh";

describe("sharded collections (live)", { skip }, () => {
  const client = new HybridSearchClient(addr ?? "unused", { timeoutMs: 10_000 });
  after(() => client.close());

  test("a collection created with 2 shards reports them and searches its documents", async () => {
    const name = `ts-shards-${randomBytes(5).toString("hex")}`;
    const created = await client.createCollection(name, { shards: 2 });
    try {
      assert.deepEqual([created.name, created.shardCount, created.documentCount], [name, 2, 0]);
      assert.equal((await client.getCollection(name)).shardCount, 2);
      const upserted = await client.upsertDocuments(
        [
          { id: "s1", text: "plasma physics of the solar wind" },
          { id: "s2", text: "solar cells on roofs" },
          { id: "s3", text: "the moon pulls the oceans" },
          { id: "s4", text: "the solar eclipse of 1999" },
        ],
        { collection: name },
      );
      assert.deepEqual([upserted.acceptedCount, upserted.rejectedCount], [4, 0]);
      const found = await client.search({ query: "solar", topK: 10, mode: RetrievalMode.RETRIEVAL_MODE_SPARSE }, { collection: name });
      assert.deepEqual(found.hits.map((h) => h.id).sort(), ["s1", "s2", "s4"]);
    } finally {
      await client.deleteCollection(name).catch((err: unknown) => {
        if (!(err instanceof HybridSearchError && err.code === status.NOT_FOUND)) throw err;
      });
    }
  });
});
