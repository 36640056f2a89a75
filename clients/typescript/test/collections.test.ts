// Live tests on a server with collections: filtered hybrid search, pagination and highlights on
// the filter collection (HYBRIDSEARCH_FILTER_COLLECTION: SciFact with synthetic metadata), and a
// collection's lifecycle. They never touch the default collection.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import {
  HybridSearchClient,
  HybridSearchError,
  RetrievalMode,
  StoredField,
  filters as f,
  schemaFields,
  type Hit,
  type SchemaField,
  type SearchOptions,
  type SearchResponse,
} from "../src/index.js";

const addr = process.env.HYBRIDSEARCH_ADDR;
const collection = process.env.HYBRIDSEARCH_FILTER_COLLECTION;
const skip = !addr
  ? "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh"
  : !collection
    ? "HYBRIDSEARCH_FILTER_COLLECTION is not set: name a hybrid SciFact collection with synthetic metadata (scripts/clients_test.sh sets it)"
    : false;

const HYBRID = RetrievalMode.RETRIEVAL_MODE_HYBRID;
const SPARSE = RetrievalMode.RETRIEVAL_MODE_SPARSE;
const QUERY = "cancer treatment";
const QUERY_STEMS = ["cancer", "treat"];
const JOURNALS = ["nature", "cell"];
// journal is nature or cell AND year >= 2010 AND NOT erratum exists
const RECENT_CLEAN = f.allOf(f.match("journal", ...JOURNALS), f.range("year", { gte: 2010 }), f.not(f.exists("erratum")));

async function rejection(promise: Promise<unknown>): Promise<HybridSearchError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HybridSearchError, `not a HybridSearchError: ${err}`);
    return err;
  }
  assert.fail("call succeeded");
}

function metadata(hit: Hit): Record<string, unknown> {
  assert.ok(hit.metadata, `hit ${hit.id} carries no metadata`);
  return hit.metadata;
}

const ids = (response: SearchResponse) => response.hits.map((h) => h.id);
const suffix = () => randomBytes(5).toString("hex");

describe("collections and filters (live)", { skip }, () => {
  const client = new HybridSearchClient(addr ?? "unused", { timeoutMs: 10_000 });
  after(() => client.close());
  const onFilterCollection: SearchOptions = { collection: collection ?? "", filter: RECENT_CLEAN };

  test("filtered hybrid search: every hit satisfies the filter", async () => {
    const response = await client.search(
      { query: QUERY, mode: HYBRID, topK: 10, returnFields: [StoredField.STORED_FIELD_METADATA] },
      onFilterCollection,
    );
    assert.equal(response.applied?.mode, HYBRID);
    assert.equal(response.hits.length, 10);
    for (const hit of response.hits) {
      const meta = metadata(hit);
      assert.ok(JOURNALS.includes(meta.journal as string), `${hit.id}: ${JSON.stringify(meta)}`);
      assert.ok((meta.year as number) >= 2010, `${hit.id}: ${JSON.stringify(meta)}`);
      assert.equal(meta.erratum, undefined, `${hit.id}: ${JSON.stringify(meta)}`);
    }
    // The filter really restricts: the unfiltered top 10 holds documents it excludes.
    const unfiltered = await client.search(
      { query: QUERY, mode: HYBRID, topK: 10, returnFields: [StoredField.STORED_FIELD_METADATA] },
      { collection },
    );
    assert.ok(
      unfiltered.hits.some((h) => !JOURNALS.includes(metadata(h).journal as string) || (metadata(h).year as number) < 2010),
    );
  });

  test("a raw Filter in the request and a datetime range", async () => {
    const since = new Date("2020-01-01T00:00:00Z");
    const built = f.allOf(f.range("published", { gte: since }), f.match("open_access", true));
    const request = {
      query: QUERY,
      collection,
      mode: HYBRID,
      topK: 5,
      returnFields: [StoredField.STORED_FIELD_METADATA],
      filter: f.toFilter(built),
    };
    const response = await client.search(request);
    assert.equal(response.hits.length, 5);
    for (const hit of response.hits) {
      assert.ok((metadata(hit).published as string) >= "2020-01-01T00:00:00Z");
      assert.equal(metadata(hit).open_access, true);
    }
    const { filter: _, ...withoutFilter } = request;
    assert.deepEqual(ids(await client.search(withoutFilter, { filter: built })), ids(response));
  });

  test("collection and filter options apply to batch and stream", async () => {
    const query = { query: QUERY, mode: HYBRID, topK: 5 };
    const expected = ids(await client.search(query, onFilterCollection));
    const batch = await client.batchSearch([query, { ...query, query: "gene expression" }], onFilterCollection);
    assert.deepEqual(ids(batch[0]), expected);
    const results = [];
    for await (const r of client.searchStream([{ requestId: "q", search: query }], onFilterCollection)) results.push(r);
    assert.deepEqual(results.map((r) => r.requestId), ["q"]);
    assert.ok(results[0].response);
    assert.deepEqual(ids(results[0].response), expected);
  });

  test("pagination: offset k, top k is ranks k+1..2k of top 2k", async () => {
    const k = 5;
    const query = { query: QUERY, mode: HYBRID };
    const both = await client.search({ ...query, topK: 2 * k }, onFilterCollection);
    const first = await client.search({ ...query, topK: k }, onFilterCollection);
    const second = await client.search({ ...query, topK: k }, { ...onFilterCollection, offset: k });
    assert.equal(both.hits.length, 2 * k);
    assert.equal(second.applied?.offset, k);
    assert.deepEqual(ids(first), ids(both).slice(0, k));
    assert.deepEqual(ids(second), ids(both).slice(k));
    assert.deepEqual(second.hits.map((h) => h.rank), [6, 7, 8, 9, 10]);
    assert.ok(!ids(first).some((id) => ids(second).includes(id)));
  });

  test("highlights: match spans lie in the snippet and cover query words", async () => {
    const response = await client.search({ query: QUERY, mode: HYBRID, topK: 5 }, { collection, highlight: { maxChars: 120 } });
    const highlighted = response.hits.filter((h) => h.highlights.length > 0);
    assert.ok(highlighted.length > 0, "no hit has a highlight");
    for (const hit of highlighted) {
      for (const hl of hit.highlights) {
        assert.ok([StoredField.STORED_FIELD_TITLE, StoredField.STORED_FIELD_TEXT].includes(hl.field));
        const points = Array.from(hl.snippet); // spans count code points, not UTF-16 units
        assert.ok(points.length > 0 && points.length <= 120);
        assert.ok(hl.matches.length > 0);
        for (const span of hl.matches) {
          assert.ok(span.start >= 0 && span.start < span.end && span.end <= points.length);
          const word = points.slice(span.start, span.end).join("").toLowerCase();
          assert.ok(QUERY_STEMS.some((stem) => word.startsWith(stem)), `${hit.id}: ${hl.snippet} / ${word}`);
        }
      }
    }
  });

  test("a filter on an undeclared field is INVALID_ARGUMENT on filter.*", async () => {
    const bad = f.allOf(f.range("year", { gte: 2010 }), f.match("no_such_field", "x"));
    const err = await rejection(client.search(QUERY, { collection, filter: bad }));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.ok(err.fieldViolations.length > 0, err.message);
    for (const v of err.fieldViolations) assert.ok(v.field.startsWith("filter."), v.field);
  });

  test("an unknown collection is NOT_FOUND", async () => {
    const missing = `ts-missing-${suffix()}`;
    for (const call of [
      () => client.getCollection(missing),
      () => client.search(QUERY, { collection: missing }),
      () => client.getIndexStats({ collection: missing }),
      () => client.deleteCollection(missing),
    ]) {
      assert.equal((await rejection(call())).code, status.NOT_FOUND);
    }
  });

  test("collection lifecycle: create, get, list, aliases, upsert and filtered search, delete", async () => {
    const tag = suffix();
    const [first, second, alias, old] = [`ts-live-a-${tag}`, `ts-live-b-${tag}`, `ts-live-alias-${tag}`, `ts-live-old-${tag}`];
    const fields: SchemaField[] = [
      { name: "tenant", type: "keyword", multiValued: false },
      { name: "year", type: "integer", multiValued: false },
      { name: "tags", type: "keyword", multiValued: true },
    ];
    try {
      const created = await client.createCollection(first, { fields }); // no model: BM25-only
      assert.deepEqual([created.name, created.encoderModelId, created.documentCount, created.default], [first, "", 0, false]);
      await client.createCollection(second, { fields, denseIndex: "exact" });
      assert.deepEqual(schemaFields(await client.getCollection(first)), fields);
      const names = (await client.listCollections()).map((c) => c.name);
      assert.ok(names.includes(first) && names.includes(second));
      assert.equal((await rejection(client.createCollection(first))).code, status.ALREADY_EXISTS);

      // The alias names the first collection, then moves to the second in one atomic call that
      // also adds another alias (to the first).
      assert.equal((await client.setAlias(alias, first))[alias], first);
      const aliases = await client.updateAliases([{ add: { alias, collection: second } }, { add: { alias: old, collection: first } }]);
      assert.deepEqual([aliases[alias], aliases[old]], [second, first]);
      assert.equal((await client.getCollection(alias)).name, second);
      assert.deepEqual((await client.getCollection(first)).aliases, [old]);
      assert.equal((await client.removeAlias(old))[old], undefined);

      const upserted = await client.upsertDocuments(
        [
          { id: "d1", title: "Solar wind", text: "plasma physics of the solar wind", metadata: { tenant: "acme", year: 2019, tags: ["space", "plasma"] } },
          { id: "d2", title: "Solar panels", text: "solar cells on roofs", metadata: { tenant: "acme", year: 2023, tags: ["energy"] } },
          { id: "d3", title: "Solar eclipse", text: "the solar eclipse of 1999", metadata: { tenant: "other", year: 1999 } },
        ],
        { collection: alias },
      );
      assert.deepEqual([upserted.acceptedCount, upserted.rejectedCount], [3, 0]);
      assert.equal((await client.getIndexStats({ collection: second })).documentCount, 3);
      assert.equal((await client.getIndexStats({ collection: first })).documentCount, 0);
      assert.equal((await client.getDocument("d2", { collection: alias })).title, "Solar panels");

      const onAlias = { query: "solar", mode: SPARSE };
      const acmeRecent = f.allOf(f.match("tenant", "acme"), f.range("year", { gte: 2020 }));
      const found = await client.search(onAlias, { collection: alias, filter: acmeRecent });
      assert.deepEqual(ids(found), ["d2"]);
      assert.equal(found.applied?.collection, second);
      const tagged = await client.search(onAlias, { collection: alias, filter: f.match("tags", "space", "energy") });
      assert.deepEqual(ids(tagged).sort(), ["d1", "d2"]);
      assert.deepEqual(ids(await client.search(onAlias, { collection: alias, filter: f.isNull("tags") })), ["d3"]);

      assert.equal((await client.deleteDocuments(["d3"], { collection: alias })).deletedCount, 1);
      assert.equal((await client.compact({ collection: second })).documentCount, 2);

      assert.deepEqual(await client.deleteCollection(second), [alias]);
      assert.deepEqual(await client.deleteCollection(first), []);
      const left = (await client.listCollections()).map((c) => c.name);
      assert.ok(!left.includes(first) && !left.includes(second));
      assert.equal((await rejection(client.getCollection(alias))).code, status.NOT_FOUND);
    } finally {
      for (const name of [first, second]) {
        await client.deleteCollection(name).catch((err: unknown) => {
          if (!(err instanceof HybridSearchError && err.code === status.NOT_FOUND)) throw err;
        });
      }
    }
  });
});
