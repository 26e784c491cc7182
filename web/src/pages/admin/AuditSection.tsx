// Audit: an aggregate's audit log, a chat as it was at a moment (auditors and platform admins,
// policy AUDIT), and for everyone the public keys and how to verify the trail independently.
import { useEffect, useState } from "react";
import { Empty, ErrorMessage, Field, Form, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import type { ChatAtQuery } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError, useSessionUser } from "../../lib/hooks";
import { usePaged } from "./paged";
import { readsAuditTrail } from "./sections";
import { formatExact, localInputToUtcIso, utcToLocalInput } from "./time";
import { useUserNames } from "./userNames";

const AuditLog = graphql(`
  query AuditLog($aggregateId: ID!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
    auditLog(aggregateId: $aggregateId, from: $from, to: $to, first: $first, after: $after) {
      nodes {
        position
        eventType
        aggregateVersion
        actorId
        occurredAt
        chainHash
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const ChatAt = graphql(`
  query ChatAt($id: ID!, $asOf: DateTime!) {
    chatAt(id: $id, asOf: $asOf) {
      id
      title
      status
      model
      ownerId
      version
      asOf
      createdAt
      updatedAt
      messages {
        id
        role
        content
      }
    }
  }
`);

export function AuditSection() {
  const user = useSessionUser();
  if (!user) return null;
  return (
    <>
      {readsAuditTrail(user.role) ? (
        <>
          <AuditLogPanel />
          <ChatAtPanel />
        </>
      ) : (
        <p className="notice">
          Reading the audit log and replaying chats as they were is for auditors (and platform admins). Anyone can verify
          the trail with the public keys below.
        </p>
      )}
      <PublicKeys />
    </>
  );
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function AuditLogPanel() {
  const [aggregateId, setAggregateId] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [asked, setAsked] = useState<{ aggregateId: string; from: string | null; to: string | null } | null>(null);
  const log = usePaged(
    AuditLog,
    { aggregateId: asked?.aggregateId ?? "", from: asked?.from ?? null, to: asked?.to ?? null, first: 50 },
    (r) => r.auditLog,
    { skip: asked === null },
  );
  const names = useUserNames();

  const show = () => {
    const id = aggregateId.trim();
    const fromIso = from ? localInputToUtcIso(from) : null;
    const toIso = to ? localInputToUtcIso(to) : null;
    if (!UUID_RE.test(id)) return setProblem("An aggregate id is a UUID, e.g. a chat's, user's or tenant's id.");
    if (from && !fromIso) return setProblem("“From” is not a valid time.");
    if (to && !toIso) return setProblem("“To” is not a valid time.");
    setProblem(null);
    setAsked({ aggregateId: id, from: fromIso, to: toIso });
  };

  return (
    <section aria-labelledby="audit-log-heading">
      <h2 id="audit-log-heading">Audit log</h2>
      <p className="hint">Every recorded event of one chat, user or tenant, in log order, with its audit-chain hash.</p>
      <Form onSubmit={show} label="Audit log">
        <div className="toolbar">
          <Field label="Aggregate id">
            {(p) => (
              <input {...p} required spellCheck={false} autoComplete="off" className="mono" value={aggregateId}
                onChange={(e) => setAggregateId(e.target.value)} />
            )}
          </Field>
          <Field label="From (optional)">
            {(p) => <input {...p} type="datetime-local" step={1} value={from} onChange={(e) => setFrom(e.target.value)} />}
          </Field>
          <Field label="To (optional)">
            {(p) => <input {...p} type="datetime-local" step={1} value={to} onChange={(e) => setTo(e.target.value)} />}
          </Field>
          <button type="submit" className="primary">
            Show audit log
          </button>
        </div>
        {problem && (
          <p className="error" role="alert">
            {problem}
          </p>
        )}
      </Form>
      <ErrorMessage error={log.error} />
      {asked && !log.loaded && !log.error && <Loading label="Loading the audit log…" />}
      {asked && log.loaded && log.nodes.length === 0 && (
        <Empty>No events of this aggregate {asked.from || asked.to ? "in that period" : "in your tenant"}.</Empty>
      )}
      {log.nodes.length > 0 && (
        <div className="table-scroll">
          <table className="data audit-log" aria-busy={log.loading}>
            <caption className="visually-hidden">Events of {asked?.aggregateId}</caption>
            <thead>
              <tr>
                <th scope="col">Position</th>
                <th scope="col">Type</th>
                <th scope="col">Version</th>
                <th scope="col">Actor</th>
                <th scope="col">Time</th>
                <th scope="col">Chain hash</th>
              </tr>
            </thead>
            <tbody>
              {log.nodes.map((e) => (
                <tr key={e.position}>
                  <td>{e.position}</td>
                  <th scope="row">{e.eventType}</th>
                  <td>{e.aggregateVersion}</td>
                  <td>{e.actorId ? <span title={e.actorId}>{names(e.actorId)}</span> : "Parley (system)"}</td>
                  <td>
                    <time dateTime={e.occurredAt}>{formatExact(e.occurredAt)}</time>
                  </td>
                  <td>{e.chainHash ? <code className="hash">{e.chainHash}</code> : <span className="hint">not chained yet</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {log.hasMore && (
        <button type="button" onClick={() => void log.loadMore()} disabled={log.loading}>
          More events
        </button>
      )}
    </section>
  );
}

type Snapshot = NonNullable<ChatAtQuery["chatAt"]>;

function ChatAtPanel() {
  const [chatId, setChatId] = useState("");
  const [asOf, setAsOf] = useState(() => utcToLocalInput(new Date()));
  const [problem, setProblem] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [result, setResult] = useState<{ snapshot: Snapshot | null; asOf: string } | null>(null);
  const [error, setError] = useState<GraphQLRequestError | null>(null);

  const show = async () => {
    const id = chatId.trim();
    const iso = localInputToUtcIso(asOf);
    if (!UUID_RE.test(id)) return setProblem("A chat id is a UUID.");
    if (!iso) return setProblem("“As of” is not a valid time.");
    setProblem(null);
    setError(null);
    setPending(true);
    try {
      const { chatAt } = await request(ChatAt, { id, asOf: iso });
      setResult({ snapshot: chatAt ?? null, asOf: iso });
    } catch (e) {
      const err = asRequestError(e);
      // NOT_FOUND: no chat with that id had started by then (or it is another tenant's).
      if (err.code === "NOT_FOUND") setResult({ snapshot: null, asOf: iso });
      else {
        setResult(null);
        setError(err);
      }
    } finally {
      setPending(false);
    }
  };

  return (
    <section aria-labelledby="chat-at-heading">
      <h2 id="chat-at-heading">A chat as it was</h2>
      <p className="hint">Rebuilt from the event log: deleted chats included, erased data shown as “(erased)”.</p>
      <Form onSubmit={show} label="A chat as it was">
        <div className="toolbar">
          <Field label="Chat id">
            {(p) => (
              <input {...p} required spellCheck={false} autoComplete="off" className="mono" value={chatId}
                onChange={(e) => setChatId(e.target.value)} />
            )}
          </Field>
          <Field label="As of" hint="Your local time.">
            {(p) => <input {...p} type="datetime-local" step={1} required value={asOf} onChange={(e) => setAsOf(e.target.value)} />}
          </Field>
          <button type="submit" className="primary" disabled={pending}>
            Show chat as of
          </button>
        </div>
        {problem && (
          <p className="error" role="alert">
            {problem}
          </p>
        )}
      </Form>
      <ErrorMessage error={error} />
      {pending && <Loading label="Replaying the chat…" />}
      <div aria-live="polite">
        {result && !pending && (result.snapshot ? <SnapshotView chat={result.snapshot} /> : <Empty>No such chat at that time.</Empty>)}
      </div>
    </section>
  );
}

function SnapshotView({ chat }: { chat: Snapshot }) {
  return (
    <article className="snapshot" aria-labelledby="snapshot-title">
      <h3 id="snapshot-title">{chat.title}</h3>
      <dl className="facts">
        <dt>Status</dt>
        <dd>{chat.status.toLowerCase()}</dd>
        <dt>As of</dt>
        <dd>
          <time dateTime={chat.asOf}>{formatExact(chat.asOf)}</time> (UTC {chat.asOf})
        </dd>
        <dt>Version</dt>
        <dd>
          {chat.version} (its last event then, at <time dateTime={chat.updatedAt}>{formatExact(chat.updatedAt)}</time>)
        </dd>
        <dt>Model</dt>
        <dd>{chat.model}</dd>
        <dt>Started</dt>
        <dd>
          <time dateTime={chat.createdAt}>{formatExact(chat.createdAt)}</time>
        </dd>
      </dl>
      {chat.messages.length === 0 ? (
        <Empty>No messages at that time.</Empty>
      ) : (
        <ol className="snapshot-messages" aria-label="Messages at that time">
          {chat.messages.map((m) => (
            <li key={m.id} className={`snapshot-message role-${m.role.toLowerCase()}`}>
              <span className="snapshot-role">{m.role === "USER" ? "User" : m.role === "ASSISTANT" ? "Assistant" : "System"}</span>
              {/* Plain text on purpose: the record as it was, never rendered as HTML. */}
              <p className="snapshot-text">{m.content}</p>
            </li>
          ))}
        </ol>
      )}
    </article>
  );
}

interface PublicKeySet {
  algorithm: string;
  keys: { key_id: string; public_key_pem: string }[];
}

/** The JSON of GET /audit/public-key, checked: only strings reach the page. */
export function parsePublicKeys(json: unknown): PublicKeySet {
  const body = json as { algorithm?: unknown; keys?: unknown };
  if (!body || typeof body !== "object" || !Array.isArray(body.keys)) throw new Error("unexpected answer");
  return {
    algorithm: typeof body.algorithm === "string" ? body.algorithm : "Ed25519",
    keys: body.keys
      .filter(
        (k): k is { key_id: string; public_key_pem: string } =>
          !!k && typeof k.key_id === "string" && typeof k.public_key_pem === "string",
      )
      .map((k) => ({ key_id: k.key_id, public_key_pem: k.public_key_pem })),
  };
}

function PublicKeys() {
  const [keys, setKeys] = useState<PublicKeySet | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    fetch("/audit/public-key", { headers: { Accept: "application/json" } })
      .then(async (response) => {
        if (!response.ok) throw new Error(`the server answered ${response.status}`);
        return parsePublicKeys(await response.json());
      })
      .then((set) => live && setKeys(set))
      .catch((e: unknown) => live && setFailed(e instanceof Error ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, []);

  return (
    <>
      <section aria-labelledby="public-keys-heading">
        <h2 id="public-keys-heading">Public keys</h2>
        <p>
          The audit ledger signs checkpoints of the log's hash chain with these keys. Obtain the key you trust
          independently as well (e.g. the <code>.pub.pem</code> file your operator published): these come from the
          deployment you are checking (its <a href="/audit/public-key">public-key endpoint</a>, as JSON).
        </p>
        {failed ? (
          <p className="error" role="alert">
            The public keys could not be loaded: {failed}.
          </p>
        ) : !keys ? (
          <Loading label="Loading the public keys…" />
        ) : keys.keys.length === 0 ? (
          <Empty>No key has signed a checkpoint yet.</Empty>
        ) : (
          keys.keys.map((k) => (
            <figure key={k.key_id} className="pem">
              <figcaption>
                {keys.algorithm} key <code>{k.key_id}</code>
              </figcaption>
              <pre tabIndex={0} aria-label={`Public key ${k.key_id}`}>
                {k.public_key_pem}
              </pre>
            </figure>
          ))
        )}
      </section>
      <section aria-labelledby="verify-heading">
        <h2 id="verify-heading">How to verify</h2>
        <ol className="steps">
          <li>
            Save a public key above as <code>parley-audit.pub.pem</code>, after checking it against the one your operator
            published.
          </li>
          <li>
            Verify the database, or one tenant's events:
            <pre tabIndex={0}>
              {"parley audit verify --public-key parley-audit.pub.pem\nparley audit verify --public-key parley-audit.pub.pem --tenant acme"}
            </pre>
          </li>
          <li>
            Verify the Kafka records (every event on <code>parley.events.v1</code> carries its <code>chain_hash</code>{" "}
            header; the signed checkpoints are on <code>parley.audit-checkpoints.v1</code>):
            <pre tabIndex={0}>{"parley audit verify --public-key parley-audit.pub.pem --source kafka"}</pre>
          </li>
          <li>
            Or check offline, without database access, an exported bundle (the tenant's events, the chain, the signed
            checkpoints and the keys):
            <pre tabIndex={0}>
              {"parley audit export --tenant acme --out acme.zip\nparley audit verify --bundle acme.zip --public-key parley-audit.pub.pem"}
            </pre>
          </li>
        </ol>
        <p>
          Exit code 0 means everything verifies; otherwise the report names the first position where history differs
          (modified, deleted, inserted, reordered, a bad signature or checkpoint). The whole procedure, the hash-chain
          algorithm and what a failure means are in <code>docs/audit.md</code> in Parley's repository.
        </p>
      </section>
    </>
  );
}
