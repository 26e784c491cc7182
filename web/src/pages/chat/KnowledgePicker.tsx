// Choosing what a chat's replies are grounded in: documents ready to answer from (the user's own
// and the tenant's collection), or the tenant's whole collection. Loaded when first opened.
import { useEffect, useId, useRef, useState } from "react";
import { ErrorMessage, Loading } from "../../components/ui";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError } from "../../lib/hooks";
import { navigate } from "../../lib/router";
import { Documents } from "../documents/operations";
import { documentsWrittenPosition } from "../documents/useDocuments";
import type { Knowledge } from "./KnowledgeBar";
import { pickable } from "./knowledge";
import { AttachKnowledge } from "./operations";
import { noteWrite } from "./writes";

const PAGE = 50;

interface Choice {
  id: string;
  title: string;
  collection: string;
  status: string;
}

export function KnowledgePicker({
  chatId,
  current,
  onClose,
  onSaved,
}: {
  chatId: string;
  current: Knowledge;
  onClose: () => void;
  onSaved: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [tenantCollection, setTenantCollection] = useState(current.tenantCollection);
  const [selected, setSelected] = useState(() => new Set(current.documents.map((d) => d.id)));
  const [documents, setDocuments] = useState<Choice[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<GraphQLRequestError | null>(null);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal?.();
    return () => element?.close?.();
  }, []);

  const fetchPage = async (after: string | null) => {
    setLoading(true);
    try {
      const { documents: page } = await request(Documents, {
        collection: null,
        first: PAGE,
        after,
        afterPosition: documentsWrittenPosition(),
      });
      setDocuments((held) => [...held, ...page.nodes]);
      setCursor(page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? null) : null);
    } catch (e) {
      setError(asRequestError(e));
    } finally {
      setLoading(false);
    }
  };

  // The first page, once; "More documents" asks for the next.
  useEffect(() => {
    void fetchPage(null);
  }, []);

  const save = async () => {
    setSaving(true);
    setError(null);
    try {
      const { attachKnowledge } = await request(AttachKnowledge, {
        input: { chatId, documentIds: [...selected], tenantCollection },
      });
      noteWrite(chatId, attachKnowledge.position);
      onSaved();
    } catch (e) {
      setError(asRequestError(e));
    } finally {
      setSaving(false);
    }
  };

  const toggle = (id: string, on: boolean) =>
    setSelected((held) => {
      const next = new Set(held);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });

  const choices = pickable<Choice>(documents, current.documents);
  return (
    <dialog
      ref={dialog}
      className="dialog knowledge-dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <h2 id={titleId}>Ground this chat in documents</h2>
        <p className="hint">Each reply is given the passages that best answer your message, and cites them as [1], [2], …</p>
        <label className="check">
          <input
            type="checkbox"
            checked={tenantCollection}
            onChange={(e) => setTenantCollection(e.target.checked)}
          />
          The tenant's whole collection (and your own documents)
        </label>
        <fieldset disabled={tenantCollection} className="knowledge-documents">
          <legend>Documents</legend>
          {choices.length > 0 && (
            <ul className="knowledge-choices">
              {choices.map((d) => (
                <li key={d.id}>
                  <label className="check">
                    <input
                      type="checkbox"
                      checked={tenantCollection || selected.has(d.id)}
                      onChange={(e) => toggle(d.id, e.target.checked)}
                    />
                    <span className="knowledge-choice-title">{d.title}</span>
                    {d.collection === "TENANT" && <span className="badge">Tenant's collection</span>}
                    {d.status !== "READY" && <span className="badge">{d.status.toLowerCase()}</span>}
                  </label>
                </li>
              ))}
            </ul>
          )}
          {loading && <Loading label="Loading documents…" />}
          {!loading && choices.length === 0 && (
            <p className="empty">
              No document is ready to answer from.{" "}
              <a
                href="/documents"
                onClick={(e) => {
                  e.preventDefault();
                  onClose();
                  navigate("/documents");
                }}
              >
                Upload one
              </a>
            </p>
          )}
          {cursor && !loading && (
            <button type="button" onClick={() => void fetchPage(cursor)}>
              More documents
            </button>
          )}
        </fieldset>
        <ErrorMessage error={error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={saving} aria-busy={saving}>
            Save
          </button>
        </div>
      </form>
    </dialog>
  );
}
