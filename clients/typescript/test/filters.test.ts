// The filter builder and request options without a server.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Filter,
  HighlightOptions,
  UpsertBatcher,
  filters as f,
  schemaFields,
  toCreateCollectionRequest,
  toSearchRequest,
  CollectionInfo,
  DenseIndexKind,
  MetadataType,
} from "../src/index.js";

test("allOf with not makes one flat filter", () => {
  const flt = f.toFilter(f.allOf(f.match("journal", "nature", "cell"), f.range("year", { gte: 2015 }), f.not(f.exists("erratum"))));
  assert.deepEqual(
    flt,
    Filter.fromPartial({
      must: [
        { match: { field: "journal", any: [{ keyword: "nature" }, { keyword: "cell" }] } },
        { range: { field: "year", gte: { integer: 2015 } } },
      ],
      mustNot: [{ exists: { field: "erratum" } }],
    }),
  );
});

test("anyOf flattens, atLeast keeps its minimum, values are typed", () => {
  const either = f.anyOf(f.anyOf(f.match("openAccess", true), f.range("impact", { gt: 5.5 })), f.isNull("erratum"));
  const flt = f.toFilter(f.allOf(either, f.atLeast(2, f.match("topics", "a"), f.match("topics", "b"), f.hasId("x", "y"))));
  const nested = flt.must[0].filter!;
  assert.deepEqual(nested.should.map((c) => Object.keys(c).filter((k) => (c as Record<string, unknown>)[k] !== undefined)), [["match"], ["range"], ["isNull"]]);
  assert.deepEqual(nested.should[0].match!.any.map((v) => v.boolean), [true]);
  assert.equal(nested.should[1].range!.gt?.number, 5.5);
  assert.equal(nested.should[1].range!.gt?.integer, undefined);
  assert.equal(flt.must[1].filter!.minShouldMatch, 2);
  assert.deepEqual(flt.must[1].filter!.should[2].hasId?.ids, ["x", "y"]);
});

test("range bounds: integers, bigints, floats and dates", () => {
  const when = new Date("2020-01-31T12:00:00Z");
  const range = f.range("published", { gt: 3n, gte: 2.5, lt: when, lte: 7 }).range!;
  assert.deepEqual([range.gt, range.gte, range.lt, range.lte], [{ integer: 3 }, { number: 2.5 }, { datetime: when }, { integer: 7 }]);
  assert.deepEqual(f.toFilter(f.exists("x")), Filter.fromPartial({ must: [{ exists: { field: "x" } }] }));
  const raw = { mustNot: [{ isNull: { field: "year" } }] };
  assert.deepEqual(f.toFilter(raw), Filter.fromPartial(raw));
});

test("bad builder input throws", () => {
  assert.throws(() => f.match("x"), RangeError);
  assert.throws(() => f.match("x", 1.5), RangeError);
  assert.throws(() => f.range("x", {}), RangeError);
  assert.throws(() => f.range("x", { gte: Number.NaN }), TypeError);
  assert.throws(() => f.range("x", { gte: new Date("nope") }), RangeError);
  assert.throws(() => f.hasId(), RangeError);
  assert.throws(() => f.atLeast(-1, f.exists("x")), RangeError);
});

test("search options fill what the query does not set", () => {
  const request = toSearchRequest("q", { collection: "papers", filter: f.exists("x"), offset: 20, highlight: { maxChars: 80 } });
  assert.equal(request.collection, "papers");
  assert.deepEqual(request.filter, Filter.fromPartial({ must: [{ exists: { field: "x" } }] }));
  assert.equal(request.offset, 20);
  assert.deepEqual(request.highlight, HighlightOptions.fromPartial({ enabled: true, maxChars: 80 }));
  const own = toSearchRequest({ query: "q", collection: "mine", offset: 5 }, { collection: "papers", offset: 20, highlight: true });
  assert.deepEqual([own.collection, own.offset, own.highlight?.enabled, own.highlight?.maxChars], ["mine", 5, true, undefined]);
  assert.equal(toSearchRequest("q").highlight, undefined);
  assert.equal(toSearchRequest("q").filter, undefined);
});

test("collection requests and schema round trip", () => {
  const fields = [
    { name: "year", type: "integer" as const, multiValued: false },
    { name: "tags", type: "keyword" as const, multiValued: true },
  ];
  const request = toCreateCollectionRequest("papers", { fields, model: "default", denseIndex: "hnsw", shards: 3 });
  assert.deepEqual(request.schema?.fields.map((x) => [x.name, x.type, x.multiValued]), [
    ["year", MetadataType.METADATA_TYPE_INTEGER, false],
    ["tags", MetadataType.METADATA_TYPE_KEYWORD, true],
  ]);
  assert.deepEqual([request.model, request.denseIndex, request.shards], ["default", DenseIndexKind.DENSE_INDEX_KIND_HNSW, 3]);
  const bm25 = toCreateCollectionRequest("b");
  assert.deepEqual([bm25.model, bm25.denseIndex, bm25.schema?.fields, bm25.shards], ["", DenseIndexKind.DENSE_INDEX_KIND_UNSPECIFIED, [], 0]);
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(() => toCreateCollectionRequest("x", { shards: bad }), { name: "RangeError", message: /^shards must be a whole number >= 0/ });
  }
  assert.deepEqual(schemaFields(CollectionInfo.fromPartial({ schema: request.schema })), fields);
  assert.throws(() => toCreateCollectionRequest("x", { fields: [{ name: "a", type: "text" as "keyword" }] }), RangeError);
});

test("upsert batches name the collection", () => {
  const batcher = new UpsertBatcher(2, undefined, "live");
  const requests = [
    ...batcher.add({ id: "a" }),
    ...batcher.add({ id: "b" }),
    ...batcher.add({ documents: [{ id: "r" }] }),
    ...batcher.add({ documents: [{ id: "s" }], collection: "other" }),
    ...batcher.flush(),
  ];
  assert.deepEqual(requests.map((r) => r.collection), ["live", "live", "other"]);
});
