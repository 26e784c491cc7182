// The documents Parley answers from (`/documents`): uploading (several files, by choosing or
// dropping them, each with its progress), the list with each document's processing status, and
// processing again or deleting. Loaded on first use, like the admin screens.
import { type DragEvent, useId, useRef, useState } from "react";
import { ConfirmDialog, Empty, ErrorMessage, Loading, Page, formatTime } from "../../components/ui";
import type { DocumentCollection } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError, useSessionUser } from "../../lib/hooks";
import { newMutationId } from "../../lib/idempotent";
import { canAdminister } from "../../lib/roles";
import { useTitle } from "../../lib/router";
import type { SessionUser } from "../../lib/session";
import { DeleteDocument, DocumentById, ReprocessDocument } from "./operations";
import {
  type UploadFailure,
  UploadError,
  describeUploadFailure,
  formatBytes,
  mayRetry,
  uploadDocument,
} from "./upload";
import { type DocumentList, type DocumentRow, noteDocumentWrite, useDocuments } from "./useDocuments";

/** What the file picker offers; the server reads the bytes and decides (docs/knowledge.md). */
const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt,application/pdf,text/*";

const COLLECTIONS: Record<DocumentCollection, string> = {
  PERSONAL: "Personal",
  TENANT: "Tenant's collection",
};

const STATUS: Record<string, string> = { PROCESSING: "Processing…", READY: "Ready", FAILED: "Failed" };

export function DocumentsPage() {
  const user = useSessionUser();
  useTitle("Documents");
  const [filter, setFilter] = useState<DocumentCollection | "">("");
  const list = useDocuments(filter || null);
  const filterId = useId();
  if (!user) return null;
  const canUpload = user.role !== "AUDITOR";

  return (
    <Page title="Documents">
      <p className="hint">
        Chats grounded in documents (“Knowledge” in a conversation) answer from their passages and cite them.
      </p>
      {canUpload && <UploadPanel admin={canAdminister(user)} onUploaded={(position) => void list.reload(position)} />}
      <section aria-labelledby="documents-title">
        <div className="section-header">
          <h2 id="documents-title">{user.role === "AUDITOR" ? "The tenant's documents" : "Documents you can use"}</h2>
          <label htmlFor={filterId} className="visually-hidden">
            Show
          </label>
          <select
            id={filterId}
            className="collection-filter"
            value={filter}
            onChange={(e) => setFilter(e.target.value as DocumentCollection | "")}
          >
            <option value="">All collections</option>
            <option value="PERSONAL">Personal</option>
            <option value="TENANT">Tenant's collection</option>
          </select>
        </div>
        <ErrorMessage error={list.error} />
        <DocumentTable list={list} user={user} />
        {list.loading && list.documents.length === 0 && <Loading label="Loading documents…" />}
        {list.loaded && !list.error && list.documents.length === 0 && (
          <Empty>{canUpload ? "No documents yet: upload one above." : "No documents yet."}</Empty>
        )}
        {list.hasMore && (
          <button type="button" onClick={() => void list.loadMore()} disabled={list.loading} aria-busy={list.loading}>
            Load more
          </button>
        )}
      </section>
      <p className="visually-hidden" role="status" aria-live="polite">
        {list.settled &&
          (list.settled.status === "READY"
            ? `${list.settled.title} is ready.`
            : `${list.settled.title} could not be processed.`)}
      </p>
    </Page>
  );
}

interface UploadEntry {
  key: string;
  file: File;
  collection: DocumentCollection;
  clientMutationId: string;
  state: "waiting" | "uploading" | "done" | "failed";
  sent: number;
  total: number;
  failure?: UploadFailure;
  duplicate?: boolean;
  controller?: AbortController;
}

function UploadPanel({ admin, onUploaded }: { admin: boolean; onUploaded: (position: number) => void }) {
  const [collection, setCollection] = useState<DocumentCollection>("PERSONAL");
  const [entries, setEntries] = useState<UploadEntry[]>([]);
  const [dragging, setDragging] = useState(false);
  const current = useRef<UploadEntry[]>([]);
  const running = useRef(false);
  const inputId = useId();
  const hintId = useId();
  const uploaded = useRef(onUploaded);
  uploaded.current = onUploaded;

  const change = (update: (held: UploadEntry[]) => UploadEntry[]) => {
    current.current = update(current.current);
    setEntries(current.current);
  };
  const patch = (key: string, fields: Partial<UploadEntry>) =>
    change((held) => held.map((e) => (e.key === key ? { ...e, ...fields } : e)));

  // One file at a time, in the order given: gentle on the per-minute budget and the worker.
  const pump = async () => {
    if (running.current) return;
    running.current = true;
    try {
      for (;;) {
        const next = current.current.find((e) => e.state === "waiting");
        if (!next) break;
        const controller = new AbortController();
        patch(next.key, { state: "uploading", sent: 0, controller, failure: undefined });
        try {
          const done = await uploadDocument(next.file, {
            collection: next.collection,
            clientMutationId: next.clientMutationId,
            signal: controller.signal,
            onProgress: (sent, total) => patch(next.key, { sent, total }),
          });
          noteDocumentWrite(done.position);
          patch(next.key, { state: "done", sent: next.file.size, duplicate: done.duplicate, controller: undefined });
          uploaded.current(done.position);
        } catch (e) {
          const failure =
            e instanceof UploadError ? e.failure : { code: "NETWORK", message: String(e), status: 0 };
          patch(next.key, { state: "failed", failure, controller: undefined });
        }
      }
    } finally {
      running.current = false;
    }
  };

  const add = (files: FileList | null) => {
    if (!files || files.length === 0) return;
    const added = [...files].map<UploadEntry>((file) => ({
      key: newMutationId(),
      file,
      collection,
      clientMutationId: newMutationId(),
      state: "waiting",
      sent: 0,
      total: file.size,
    }));
    change((held) => [...held, ...added]);
    void pump();
  };

  const retry = (key: string) => {
    patch(key, { state: "waiting", failure: undefined, sent: 0 });
    void pump();
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    add(event.dataTransfer.files);
  };

  const busy = entries.some((e) => e.state === "waiting" || e.state === "uploading");
  const finished = entries.some((e) => e.state === "done" || e.state === "failed");

  return (
    <section className="panel upload-panel" aria-labelledby="upload-title">
      <h2 id="upload-title">Upload</h2>
      {admin ? (
        <fieldset className="collection-choice">
          <legend>Add to</legend>
          <label className="check">
            <input
              type="radio"
              name="collection"
              value="PERSONAL"
              checked={collection === "PERSONAL"}
              onChange={() => setCollection("PERSONAL")}
            />
            Your documents (personal)
          </label>
          <label className="check">
            <input
              type="radio"
              name="collection"
              value="TENANT"
              checked={collection === "TENANT"}
              onChange={() => setCollection("TENANT")}
            />
            The tenant's collection (every member can use it)
          </label>
        </fieldset>
      ) : (
        <p className="hint">Documents you upload are yours: only your chats answer from them.</p>
      )}
      {/* Dropping is a shortcut; the file input is the accessible way and always there. */}
      <div
        className={`drop-zone${dragging ? " dragging" : ""}`}
        data-testid="drop-zone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <label htmlFor={inputId}>Choose files to upload</label>
        <input
          id={inputId}
          type="file"
          multiple
          accept={ACCEPT}
          aria-describedby={hintId}
          onChange={(e) => {
            add(e.target.files);
            e.target.value = "";
          }}
        />
        <small id={hintId} className="hint">
          or drop them here. PDF, Word (.docx), HTML, Markdown or plain text; Parley reads the text (no scans).
        </small>
      </div>
      {entries.length > 0 && (
        <ul className="upload-list" aria-label="Uploads">
          {entries.map((entry) => (
            <UploadRow
              key={entry.key}
              entry={entry}
              onCancel={() => entry.controller?.abort()}
              onRetry={() => retry(entry.key)}
              onRemove={() => change((held) => held.filter((e) => e.key !== entry.key))}
            />
          ))}
        </ul>
      )}
      {finished && !busy && (
        <button
          type="button"
          className="link"
          onClick={() => change((held) => held.filter((e) => e.state !== "done" && e.state !== "failed"))}
        >
          Clear finished uploads
        </button>
      )}
    </section>
  );
}

function UploadRow({
  entry,
  onCancel,
  onRetry,
  onRemove,
}: {
  entry: UploadEntry;
  onCancel: () => void;
  onRetry: () => void;
  onRemove: () => void;
}) {
  const { file, state, failure } = entry;
  const percent = entry.total > 0 ? Math.min(100, Math.round((entry.sent / entry.total) * 100)) : 0;
  return (
    <li className={`upload upload-${state}`}>
      <span className="upload-name">{file.name}</span>
      <span className="upload-size">{formatBytes(file.size)}</span>
      {entry.collection === "TENANT" && <span className="badge">Tenant's collection</span>}
      {state === "waiting" && <span className="hint">Waiting…</span>}
      {state === "uploading" && (
        <>
          <progress max={100} value={percent} aria-label={`Uploading ${file.name}`} />
          <span className="hint">{percent} %</span>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </>
      )}
      {state === "done" && (
        <span className="ok">{entry.duplicate ? "Already uploaded" : "Uploaded"}</span>
      )}
      {state === "failed" && failure && (
        <>
          <span className="error upload-error" role="alert" data-code={failure.code}>
            {file.name}: {describeUploadFailure(failure, file)}
          </span>
          {mayRetry(failure) && (
            <button type="button" onClick={onRetry}>
              Retry
            </button>
          )}
          <button type="button" onClick={onRemove}>
            Dismiss
          </button>
        </>
      )}
    </li>
  );
}

/** Whether `user` may process `document` again or delete it (domain/policy.py, managed_document). */
function manages(user: SessionUser, document: DocumentRow): boolean {
  return document.ownerId ? document.ownerId === user.id : canAdminister(user);
}

function DocumentTable({ list, user }: { list: DocumentList; user: SessionUser }) {
  const [error, setError] = useState<GraphQLRequestError | null>(null);
  const [deleting, setDeleting] = useState<DocumentRow | null>(null);
  const [working, setWorking] = useState<string | null>(null);
  const anyManaged = list.documents.some((d) => manages(user, d));

  const reprocess = async (document: DocumentRow) => {
    setError(null);
    setWorking(document.id);
    try {
      const { reprocessDocument } = await request(ReprocessDocument, { input: { documentId: document.id } });
      noteDocumentWrite(reprocessDocument.position);
      const { document: fresh } = await request(DocumentById, {
        id: document.id,
        afterPosition: reprocessDocument.position,
      });
      list.replace(fresh);
    } catch (e) {
      setError(asRequestError(e));
    } finally {
      setWorking(null);
    }
  };

  const remove = async (document: DocumentRow) => {
    setError(null);
    setWorking(document.id);
    try {
      const { deleteDocument } = await request(DeleteDocument, { input: { documentId: document.id } });
      list.remove(document.id);
      void list.reload(deleteDocument.position);
    } catch (e) {
      setError(asRequestError(e));
    } finally {
      setWorking(null);
    }
  };

  if (list.documents.length === 0) return <ErrorMessage error={error} />;
  return (
    <>
      <ErrorMessage error={error} />
      <div className="table-scroll">
        <table className="data documents">
          <caption className="visually-hidden">Documents, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Document</th>
              <th scope="col">Status</th>
              <th scope="col">Contents</th>
              <th scope="col">Uploaded</th>
              {anyManaged && (
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {list.documents.map((document) => (
              <tr key={document.id} data-document-id={document.id} aria-busy={document.status === "PROCESSING"}>
                <th scope="row">
                  <span className="document-title">{document.title}</span>
                  <span className="document-facts">
                    <span className="badge">{COLLECTIONS[document.collection]}</span>
                    <span>{document.mediaType}</span>
                  </span>
                </th>
                <td>
                  <span className={`status status-${document.status.toLowerCase()}`}>{STATUS[document.status]}</span>
                  {document.revision > 1 && <span className="hint"> revision {document.revision}</span>}
                  {document.status === "FAILED" && (
                    <p className="failure-reason">{document.failureReason || document.failureCode}</p>
                  )}
                </td>
                <td>
                  <Contents document={document} />
                </td>
                <td>
                  <time dateTime={document.createdAt}>{formatTime(document.createdAt)}</time>
                </td>
                {anyManaged && (
                  <td className="actions">
                    {manages(user, document) && (
                      <>
                        <button
                          type="button"
                          onClick={() => void reprocess(document)}
                          disabled={working === document.id || document.status === "PROCESSING"}
                          aria-label={`Reprocess ${document.title}`}
                        >
                          Reprocess
                        </button>
                        <button
                          type="button"
                          className="danger-outline"
                          onClick={() => setDeleting(document)}
                          disabled={working === document.id}
                          aria-label={`Delete ${document.title}`}
                        >
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ConfirmDialog
        open={deleting !== null}
        title={`Delete “${deleting?.title ?? ""}”?`}
        confirmLabel="Delete document"
        danger
        onCancel={() => setDeleting(null)}
        onConfirm={() => {
          const document = deleting;
          setDeleting(null);
          if (document) void remove(document);
        }}
      >
        <p>
          Its file and passages are destroyed: no search finds it and no new reply can use it. Replies that cited it keep
          their citations, shown as “passage erased (document deleted)”. This cannot be undone.
        </p>
      </ConfirmDialog>
    </>
  );
}

function Contents({ document }: { document: DocumentRow }) {
  const facts = [
    document.pages ? `${document.pages} ${document.pages === 1 ? "page" : "pages"}` : null,
    document.status !== "PROCESSING" && document.chunks != null
      ? `${document.chunks} ${document.chunks === 1 ? "passage" : "passages"}`
      : null,
    formatBytes(document.sizeBytes),
  ].filter(Boolean);
  return (
    <>
      <span>{facts.join(" · ")}</span>
      {document.embeddingModel && document.status === "READY" && (
        <small className="hint document-model">Embedded by {document.embeddingModel}</small>
      )}
    </>
  );
}

