// Live tests: HYBRIDSEARCH_ADDR names a running server (scripts/clients_test.sh starts one).
import { test, describe, after, afterEach, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Server, ServerCredentials, status, type ServerDuplexStream } from "@grpc/grpc-js";
import {
  Document,
  HybridSearchClient,
  HybridSearchError,
  RetrievalMode,
  SearchServiceService,
  StoredField,
  UpsertBatcher,
  type SearchStreamRequest,
  SearchStreamResponse,
  fieldViolationsFromStatus,
  type DocumentLike,
  SearchResponse,
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

test("documents are cut into batches by count and by size", () => {
  const cut = (items: Parameters<UpsertBatcher["add"]>[0][], batcher: UpsertBatcher) =>
    [...items.flatMap((item) => batcher.add(item)), ...batcher.flush()].map((r) => r.documents.map((d) => d.id));
  const docs = ["0", "1", "2", "3", "4"].map((id) => ({ id }));
  assert.deepEqual(cut(docs, new UpsertBatcher(2)), [["0", "1"], ["2", "3"], ["4"]]);
  const sized = [{ id: "a", text: "x".repeat(60) }, { id: "b", text: "y".repeat(60) }, { id: "c" }];
  assert.deepEqual(cut(sized, new UpsertBatcher(10, 100)), [["a"], ["b", "c"]]);
  assert.deepEqual(cut([{ id: "a" }, { documents: [{ id: "r" }] }, { id: "b" }], new UpsertBatcher()), [["a"], ["r"], ["b"]]);
  assert.throws(() => new UpsertBatcher(0), RangeError);
});

test("non-JSON metadata throws naming the document and field", () => {
  const batcher = new UpsertBatcher();
  assert.throws(() => batcher.add({ id: "d1", metadata: { n: 1, when: 1n } }), {
    name: "TypeError",
    message: /document "d1": metadata field "when": a bigint is not a JSON value/,
  });
  assert.throws(() => batcher.add({ id: "d2", metadata: { nested: { m: new Map() } } }), /document "d2": metadata field "nested.m": a Map/);
  assert.throws(() => batcher.add({ documents: [{ id: "d3", metadata: { s: [1, new Set()] } }] }), /document "d3": metadata field "s\[1\]": a Set/);
  assert.equal(batcher.add({ id: "ok", metadata: { a: [1, "x", null, { b: true }] } }).length, 0);
});

test("a Date in metadata is sent as RFC 3339 text in UTC, at any depth", () => {
  const batcher = new UpsertBatcher(1);
  const metadata = {
    published: new Date("2020-01-31T14:00:00+02:00"),
    events: [{ at: new Date(Date.UTC(2021, 4, 1, 8, 30, 0, 250)) }],
    n: 1,
  };
  const [request] = batcher.add({ id: "d", metadata });
  assert.deepEqual(request?.documents[0]?.metadata, {
    published: "2020-01-31T12:00:00Z",
    events: [{ at: "2021-05-01T08:30:00.250Z" }],
    n: 1,
  });
  assert.ok(metadata.published instanceof Date, "the caller's object is left as it was");
  const [batch] = batcher.add({ documents: [{ id: "b", metadata: { at: [new Date(0)] } }] });
  assert.deepEqual(batch?.documents[0]?.metadata, { at: ["1970-01-01T00:00:00Z"] });
  assert.throws(() => batcher.add({ id: "bad", metadata: { log: [{ at: new Date("not a date") }] } }), {
    name: "RangeError",
    message: /document "bad": metadata field "log\[0\]\.at": invalid Date/,
  });
});

test("stream results carry the partial flag", async () => {
  // A fake SearchService: a partial then a final answer for one progressive request.
  const server = new Server();
  server.addService(SearchServiceService, {
    searchStream: (call: ServerDuplexStream<SearchStreamRequest, SearchStreamResponse>) => {
      call.on("data", (req: SearchStreamRequest) => {
        call.write(SearchStreamResponse.fromPartial({ requestId: req.requestId, response: {}, partial: true }));
        call.write(SearchStreamResponse.fromPartial({ requestId: req.requestId, response: {}, partial: false }));
      });
      call.on("end", () => call.end());
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const fake = new HybridSearchClient(`127.0.0.1:${port}`, { timeoutMs: 5_000 });
  try {
    const got: [string, boolean][] = [];
    for await (const r of fake.searchStream([{ requestId: "p", search: { query: "q" }, progressive: true }])) {
      got.push([r.requestId, r.partial]);
    }
    assert.deepEqual(got, [["p", true], ["p", false]]);
  } finally {
    fake.close();
    server.forceShutdown();
  }
});

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("live server", { skip: addr ? false : "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh" }, () => {
  const client = new HybridSearchClient(addr ?? "unused", { timeoutMs: 10_000, bearerToken: "test" });
  after(() => client.close());

  test("replies over grpc-js's 4 MiB default are received", async () => {
    const queries = Array.from({ length: 64 }, () => ({
      query: QUERY,
      topK: 100,
      mode: SPARSE,
      returnFields: [StoredField.STORED_FIELD_TITLE, StoredField.STORED_FIELD_TEXT],
    }));
    const responses = await client.batchSearch(queries, { timeoutMs: 60_000 });
    const size = responses.reduce((n, r) => n + SearchResponse.encode(r).finish().length, 0);
    assert.ok(size > 4 * 1024 * 1024, `reply is ${size} bytes, want over 4 MiB`);
  });

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

  // IndexService: ids unique to this client, so the four clients' tests never collide.
  const LIVE_IDS = ["ts-live-1", "ts-live-2"];
  const ALL_IDS = [...LIVE_IDS, "ts-live-3"];
  const MARKER = "tslivemarker"; // a word no sample document holds
  const hitIds = async (query: string) =>
    (await client.search({ query, topK: 10, mode: SPARSE })).hits.map((h) => h.id);

  describe("index service", () => {
    beforeEach(async () => void (await client.deleteDocuments(ALL_IDS)));
    afterEach(async () => void (await client.deleteDocuments(ALL_IDS)));

    test("upsert, get, stats, search, delete round trip", async () => {
      const before = await client.getIndexStats();
      assert.equal(before.writable, true);
      const first: DocumentLike = {
        id: LIVE_IDS[0],
        title: "TypeScript live document",
        text: `${MARKER} boundary layer notes`,
        metadata: { lang: "typescript", n: 1, tags: ["a", "b"] },
      };
      const second = Document.fromPartial({ id: LIVE_IDS[1], title: "Second", text: "plain text" });
      // batchSize 1: three messages on the stream; the blank id is rejected, not fatal.
      const response = await client.upsertDocuments([first, second, { id: "  " }], { batchSize: 1 });
      assert.deepEqual([response.acceptedCount, response.replacedCount, response.rejectedCount], [2, 0, 1]);
      assert.deepEqual(response.rejected.map((r) => [r.position, r.id]), [[2, "  "]]);
      assert.ok(response.rejected[0].reason);
      assert.ok(response.generation > before.generation);

      const after = await client.getIndexStats();
      assert.equal(after.documentCount, before.documentCount + 2);
      assert.equal(after.generation, response.generation);
      assert.deepEqual(await client.getDocument(LIVE_IDS[0]), Document.fromPartial(first));
      assert.deepEqual(await client.getDocument(LIVE_IDS[1]), second);
      assert.deepEqual(await hitIds(MARKER), [LIVE_IDS[0]]);

      const replaced = await client.upsertDocuments([{ id: LIVE_IDS[0], text: "rewritten" }]);
      assert.deepEqual([replaced.acceptedCount, replaced.replacedCount], [1, 1]);
      assert.deepEqual(await hitIds(MARKER), []);

      const deleted = await client.deleteDocuments([...LIVE_IDS, "ts-live-missing"]);
      assert.equal(deleted.deletedCount, 2);
      assert.deepEqual(deleted.notFoundIds, ["ts-live-missing"]);
      assert.ok(deleted.generation > replaced.generation);
      assert.equal((await client.getIndexStats()).documentCount, before.documentCount);
      const err = await rejection(client.getDocument(LIVE_IDS[0]));
      assert.equal(err.code, status.NOT_FOUND);
    });

    test("upsert takes an async iterable and ready batches", async () => {
      async function* documents() {
        yield { documents: LIVE_IDS.map((id) => ({ id, text: "batched" })) };
        yield { id: "ts-live-3", text: "loose" };
      }
      assert.equal((await client.upsertDocuments(documents())).acceptedCount, 3);
      assert.equal((await client.getDocument("ts-live-3")).text, "loose");
    });

    test("an error thrown by the document source is rethrown", async () => {
      const broken = new Error("source broke");
      function* documents() {
        yield { id: "ts-live-3", text: "committed before the failure" };
        throw broken;
      }
      await assert.rejects(client.upsertDocuments(documents(), { batchSize: 1 }), (err) => err === broken);
    });

    test("a stream failing part-way carries the response so far", async () => {
      const before = await client.getIndexStats();
      // The second message names another collection: INVALID_ARGUMENT once the first is applied.
      const err = await rejection(
        client.upsertDocuments([
          { documents: [{ id: "ts-live-3", text: "applied" }, { id: "  " }] },
          { documents: [{ id: LIVE_IDS[0] }], collection: "ts-live-elsewhere" },
        ]),
      );
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.deepEqual(err.fieldViolations.map((v) => v.field), ["collection"]);
      const partial = err.partialUpsert;
      assert.ok(partial, `no partial response in ${err.message}`);
      assert.deepEqual(
        [partial.appliedMessages, partial.acceptedCount, partial.replacedCount, partial.rejectedCount],
        [1, 1, 0, 1],
      );
      assert.deepEqual(partial.rejected.map((r) => [r.position, r.id]), [[1, "  "]]);
      assert.ok(partial.rejected[0].reason);
      assert.ok(partial.generation > before.generation);
      assert.equal((await client.getDocument("ts-live-3")).text, "applied");
      const missing = await rejection(client.getDocument(LIVE_IDS[0]));
      assert.equal(missing.code, status.NOT_FOUND);
      assert.equal(missing.partialUpsert, undefined);
    });

    test("index calls map errors with field violations", async () => {
      const blank = await rejection(client.getDocument(" "));
      assert.equal(blank.code, status.INVALID_ARGUMENT);
      assert.deepEqual(blank.fieldViolations.map((v) => v.field), ["id"]);
      const none = await rejection(client.deleteDocuments([]));
      assert.deepEqual(none.fieldViolations.map((v) => v.field), ["ids"]);
    });
  });

  test("stream is lazy: a request can wait for an earlier answer", async () => {
    const firstRead = signal();
    async function* requests() {
      yield { requestId: "first", search: { query: QUERY, topK: 1, mode: SPARSE } };
      await firstRead.promise; // a stream that buffered requests or answers would hang here
      yield { requestId: "second", search: { query: OTHER_QUERY, topK: 1, mode: SPARSE } };
    }
    const seen: string[] = [];
    for await (const r of client.searchStream(requests())) {
      seen.push(r.requestId);
      firstRead.resolve();
    }
    assert.deepEqual(seen, ["first", "second"]);
  });

  test("an error mid-stream surfaces from the iterator after the answers", async () => {
    const release = signal();
    async function* requests() {
      yield { requestId: "only", search: { query: QUERY, topK: 1, mode: SPARSE } };
      await release.promise; // hold the stream open past its deadline
    }
    const seen: string[] = [];
    try {
      const err = await rejection(
        (async () => {
          for await (const r of client.searchStream(requests(), { timeoutMs: 1_000 })) seen.push(r.requestId);
        })(),
      );
      assert.equal(err.code, status.DEADLINE_EXCEEDED);
      assert.deepEqual(seen, ["only"]);
    } finally {
      release.resolve();
    }
  });
});
