// Usage: npm run example -- [address] [query]
import { HybridSearchClient, HybridSearchError, RetrievalMode } from "../src/index.js";

const [address = "127.0.0.1:50051", query = "boundary layer"] = process.argv.slice(2);
const client = new HybridSearchClient(address, { timeoutMs: 5_000 });
try {
  const response = await client.search({ query, topK: 5, mode: RetrievalMode.RETRIEVAL_MODE_SPARSE });
  for (const hit of response.hits) console.log(`${hit.rank}\t${hit.id}\t${hit.score.toFixed(4)}`);
} catch (err) {
  if (err instanceof HybridSearchError) console.error(err.code, err.details, err.fieldViolations);
  process.exitCode = 1;
} finally {
  client.close();
}
