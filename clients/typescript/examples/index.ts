// Usage: npm run example:index -- [address]
// Upserts generated documents, reads one back, searches it with a streamed query, deletes them.
import { HybridSearchClient, HybridSearchError, RetrievalMode, type DocumentLike } from "../src/index.js";

const [address = "127.0.0.1:50051"] = process.argv.slice(2);
const client = new HybridSearchClient(address, { timeoutMs: 30_000 });

function* documents(): Generator<DocumentLike> {
  for (let i = 0; i < 1_000; i++) {
    yield { id: `example-${i}`, title: `Example ${i}`, text: "an example document about wombats", metadata: { n: i } };
  }
}

try {
  const result = await client.upsertDocuments(documents(), { batchSize: 250 }); // 4 atomic commits
  console.log(`accepted ${result.acceptedCount}, replaced ${result.replacedCount}, generation ${result.generation}`);
  for (const r of result.rejected) console.log(`rejected #${r.position} ${r.id}: ${r.reason}`);

  console.log(await client.getDocument("example-7"));
  const stats = await client.getIndexStats();
  console.log(`${stats.documentCount} documents, generation ${stats.generation}`);

  // Requests are pulled lazily; answers come back as they arrive.
  async function* queries() {
    for (const query of ["wombats", "example document"]) {
      yield { requestId: query, search: { query, topK: 3, mode: RetrievalMode.RETRIEVAL_MODE_SPARSE } };
    }
  }
  for await (const r of client.searchStream(queries())) {
    console.log(r.requestId, r.error ? r.error.message : r.response?.hits.map((h) => h.id));
  }

  const deleted = await client.deleteDocuments([...documents()].map((d) => d.id).concat("missing"));
  console.log(`deleted ${deleted.deletedCount}, not found ${deleted.notFoundIds}`);
  await client.getDocument("example-7").catch((err: unknown) => {
    if (err instanceof HybridSearchError) console.log("after delete:", err.code, err.details); // 5 NOT_FOUND
  });
} catch (err) {
  if (err instanceof HybridSearchError) console.error(err.code, err.details, err.fieldViolations);
  process.exitCode = 1;
} finally {
  client.close();
}
