// The GraphQL-over-HTTP reference audit (graphql-http's serverAudits) against a running server:
//   node audit.mjs http://127.0.0.1:8000/graphql ['Header-Name: value' ...]
// prints every audit's result as JSON ({id, name, status: ok | notice | warn | error, reason});
// the caller decides what fails. The headers are added to every request the audit sends.
import { serverAudits } from 'graphql-http';

const [url, ...headers] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs GRAPHQL_URL [HEADER: VALUE ...]');
  process.exit(2);
}
const extra = Object.fromEntries(headers.map((header) => header.split(/:\s*/, 2)));
const fetchFn = (input, init = {}) => fetch(input, { ...init, headers: { ...init.headers, ...extra } });

const results = [];
// One at a time: a few dozen small requests, and CI machines have few cores.
for (const { fn } of serverAudits({ url, fetchFn })) {
  const { id, name, status, reason } = await fn();
  results.push({ id, name, status, reason: reason ?? null });
}
console.log(JSON.stringify(results, null, 1));
