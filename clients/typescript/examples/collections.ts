// Usage: npm run example:collections -- [address] [filter collection]
// Collections and aliases, then a filtered hybrid search (second page, with highlights) on a
// collection whose documents carry year / journal / erratum metadata.
import { HybridSearchClient, HybridSearchError, RetrievalMode, StoredField, filters as f, type SchemaField } from "../src/index.js";

const [address = "127.0.0.1:50051", papers = "scifact"] = process.argv.slice(2);
const client = new HybridSearchClient(address, { timeoutMs: 10_000 });
try {
  // A BM25-only collection (no model; model: "default" adds the server's encoder) behind an alias.
  // One index directory: { fields, shards: 4 } would spread its documents over 4 shards by id.
  const fields: SchemaField[] = [
    { name: "tenant", type: "keyword" },
    { name: "year", type: "integer" },
    { name: "tags", type: "keyword", multiValued: true },
  ];
  const info = await client.createCollection("notes-v1", { fields });
  console.log(info.name, info.encoderModelId || "(BM25 only)", info.schema?.fields.length, "fields");
  await client.setAlias("notes", "notes-v1");
  const docs = [
    { id: "n1", title: "Solar wind", text: "solar plasma", metadata: { tenant: "acme", year: 2019 } },
    { id: "n2", title: "Solar panels", text: "solar cells", metadata: { tenant: "acme", year: 2023 } },
    { id: "n3", title: "Solar eclipse", text: "an eclipse", metadata: { tenant: "other", tags: ["sky"] } },
  ];
  console.log("accepted", (await client.upsertDocuments(docs, { collection: "notes" })).acceptedCount);
  const recent = f.allOf(f.match("tenant", "acme"), f.range("year", { gte: 2020 }));
  const found = await client.search({ query: "solar", mode: RetrievalMode.RETRIEVAL_MODE_SPARSE }, { collection: "notes", filter: recent });
  console.log("acme since 2020:", found.hits.map((h) => h.id));
  // Several alias actions, applied atomically: move "notes", keep the old one reachable.
  await client.createCollection("notes-v2", { fields });
  console.log(await client.updateAliases([{ add: { alias: "notes", collection: "notes-v2" } }, { add: { alias: "notes-old", collection: "notes-v1" } }]));
  console.log((await client.listCollections()).map((c) => [c.name, c.documentCount, c.aliases]));
  console.log("aliases removed:", await client.deleteCollection("notes-v1"), await client.deleteCollection("notes-v2"));

  // journal is nature or cell AND year >= 2010 AND NOT erratum exists: the second page of 3.
  const filter = f.allOf(f.match("journal", "nature", "cell"), f.range("year", { gte: 2010 }), f.not(f.exists("erratum")));
  const response = await client.search(
    { query: "cancer treatment", mode: RetrievalMode.RETRIEVAL_MODE_HYBRID, topK: 3, returnFields: [StoredField.STORED_FIELD_METADATA] },
    { collection: papers, filter, offset: 3, highlight: { maxChars: 60 } },
  );
  for (const hit of response.hits) {
    console.log(hit.rank, hit.id, hit.score.toFixed(3), hit.metadata?.journal, hit.metadata?.year);
    for (const hl of hit.highlights) {
      const points = Array.from(hl.snippet); // spans are in code points
      const words = hl.matches.map((m) => points.slice(m.start, m.end).join(""));
      console.log("   ", StoredField[hl.field], JSON.stringify(hl.snippet), words);
    }
  }
} catch (err) {
  if (err instanceof HybridSearchError) console.error(err.message, err.fieldViolations);
  else console.error(err);
  process.exitCode = 1;
} finally {
  client.close();
}
