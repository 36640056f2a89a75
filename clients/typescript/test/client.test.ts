// Live tests: HYBRIDSEARCH_ADDR names a running server (scripts/clients_test.sh starts one).
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import {
  HybridSearchClient,
  HybridSearchError,
  RetrievalMode,
  fieldViolationsFromStatus,
  type SearchResponse,
  type StreamResult,
} from "../src/index.js";

const addr = process.env.HYBRIDSEARCH_ADDR;
// Words that occur in the bundled sample corpus, so BM25 returns hits.
const QUERY = process.env.HYBRIDSEARCH_TEST_QUERY ?? "boundary layer";
const OTHER_QUERY = process.env.HYBRIDSEARCH_TEST_OTHER_QUERY ?? "supersonic flow";
const SPARSE = RetrievalMode.RETRIEVAL_MODE_SPARSE;

function assertRanked(response: SearchResponse | undefined, topK: number): void {
  assert.ok(response);
  assert.ok(response.hits.length > 0 && response.hits.length <= topK, `${response.hits.length} hits`);
  response.hits.forEach((hit, i) => {
    assert.equal(hit.rank, i + 1);
    if (i > 0) assert.ok(hit.score <= response.hits[i - 1].score);
  });
  assert.equal(response.applied?.mode, SPARSE);
  assert.equal(response.applied?.topK, topK);
}

async function rejection(promise: Promise<unknown>): Promise<HybridSearchError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HybridSearchError, `not a HybridSearchError: ${err}`);
    return err;
  }
  assert.fail("call succeeded");
}

test("field violations decode from a serialized google.rpc.Status", () => {
  // Status{code: 3, message: "m", details: [Any{BadRequest{[{field: "q", description: "d"}]}}]}
  const violation = Buffer.from([0x0a, 0x01, 0x71, 0x12, 0x01, 0x64]);
  const badRequest = Buffer.concat([Buffer.from([0x0a, violation.length]), violation]);
  const typeUrl = Buffer.from("type.googleapis.com/google.rpc.BadRequest");
  const any = Buffer.concat([
    Buffer.from([0x0a, typeUrl.length]), typeUrl, Buffer.from([0x12, badRequest.length]), badRequest,
  ]);
  const statusBytes = Buffer.concat([Buffer.from([0x08, 0x03, 0x12, 0x01, 0x6d, 0x1a, any.length]), any]);
  assert.deepEqual(fieldViolationsFromStatus(statusBytes), [{ field: "q", description: "d" }]);
});

describe("live server", { skip: addr ? false : "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh" }, () => {
  const client = new HybridSearchClient(addr ?? "unused", { timeoutMs: 10_000, bearerToken: "test" });
  after(() => client.close());

  test("search", async () => {
    assertRanked(await client.search({ query: QUERY, topK: 3, mode: SPARSE }), 3);
  });

  test("batch search keeps request order", async () => {
    const queries = [QUERY, OTHER_QUERY].map((query) => ({ query, topK: 5, mode: SPARSE }));
    const batch = await client.batchSearch(queries);
    assert.equal(batch.length, 2);
    for (const [i, q] of queries.entries()) {
      const single = await client.search(q);
      assert.deepEqual(batch[i].hits.map((h) => h.id), single.hits.map((h) => h.id));
    }
  });

  test("batch search names the bad request", async () => {
    const err = await rejection(client.batchSearch([{ query: QUERY, mode: SPARSE }, { query: "", mode: SPARSE }]));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.deepEqual(err.fieldViolations.map((v) => v.field), ["requests[1].query"]);
  });

  test("stream answers every id and reports errors in band", async () => {
    const results = new Map<string, StreamResult>();
    for await (const r of client.searchStream([
      { requestId: "a", search: { query: QUERY, topK: 3, mode: SPARSE } },
      { requestId: "bad", search: { query: " ", mode: SPARSE } },
      { requestId: "b", search: { query: OTHER_QUERY, topK: 2, mode: SPARSE } },
    ])) {
      results.set(r.requestId, r);
    }
    assert.deepEqual([...results.keys()].sort(), ["a", "b", "bad"]);
    assertRanked(results.get("a")?.response, 3);
    assertRanked(results.get("b")?.response, 2);
    const err = results.get("bad")?.error;
    assert.ok(err);
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.deepEqual(err.fieldViolations.map((v) => v.field.replace(/^search\./, "")), ["query"]);
  });

  for (const [name, request, field] of [
    ["empty query", { query: "", mode: SPARSE }, "query"],
    ["top_k above 1000", { query: QUERY, topK: 1001, mode: SPARSE }, "top_k"],
  ] as const) {
    test(`INVALID_ARGUMENT surfaces the ${field} violation (${name})`, async () => {
      const err = await rejection(client.search(request));
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.deepEqual(err.fieldViolations.map((v) => v.field), [field]);
      assert.ok(err.fieldViolations[0].description.length > 0);
    });
  }

  test("per-call deadline overrides the default", async () => {
    const err = await rejection(client.search({ query: QUERY, mode: SPARSE }, { timeoutMs: -1000 }));
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
  });
});
