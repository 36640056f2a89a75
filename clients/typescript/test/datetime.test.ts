// Live: a Date in document metadata is stored as the declared datetime field's instant, so a
// datetime range filter (whose bound is a Date too) finds it. Needs a server with collections
// (`serve --data-dir`, as scripts/clients_test.sh runs it).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { HybridSearchClient, HybridSearchError, RetrievalMode, filters as f } from "../src/index.js";

const addr = process.env.HYBRIDSEARCH_ADDR;
const skip = addr ? false : "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh";

describe("datetime metadata (live)", { skip }, () => {
  const client = new HybridSearchClient(addr ?? "unused", { timeoutMs: 10_000 });
  after(() => client.close());

  test("a Date in a declared datetime field is found by a datetime range filter", async () => {
    const name = `ts-dates-${randomBytes(5).toString("hex")}`;
    await client.createCollection(name, { fields: [{ name: "published", type: "datetime" }] });
    try {
      const upserted = await client.upsertDocuments(
        [
          { id: "old", text: "solar wind", metadata: { published: new Date("2019-06-01T00:00:00Z") } },
          // 01:00 at +02:00 is 2019-12-31T23:00Z: before the bound once converted.
          { id: "edge", text: "solar wind", metadata: { published: new Date("2020-01-01T01:00:00+02:00") } },
          { id: "new", text: "solar wind", metadata: { published: new Date("2020-01-31T14:00:00+02:00") } },
        ],
        { collection: name },
      );
      assert.deepEqual([upserted.acceptedCount, upserted.rejectedCount], [3, 0]);
      const since = f.range("published", { gte: new Date("2020-01-01T00:00:00Z") });
      const found = await client.search({ query: "solar", mode: RetrievalMode.RETRIEVAL_MODE_SPARSE }, { collection: name, filter: since });
      assert.deepEqual(found.hits.map((h) => h.id), ["new"]);
      assert.deepEqual((await client.getDocument("new", { collection: name })).metadata, { published: "2020-01-31T12:00:00Z" });

      // An invalid Date is no instant: it throws before anything is sent.
      await assert.rejects(client.upsertDocuments([{ id: "bad", metadata: { published: new Date("nope") } }], { collection: name }), {
        name: "RangeError",
        message: /document "bad": metadata field "published": invalid Date/,
      });
      assert.equal((await client.getIndexStats({ collection: name })).documentCount, 3);
    } finally {
      await client.deleteCollection(name).catch((err: unknown) => {
        if (!(err instanceof HybridSearchError && err.code === status.NOT_FOUND)) throw err;
      });
    }
  });
});
