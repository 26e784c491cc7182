// The conversation's "Knowledge" line: what its replies are grounded in, and for the chat's owner
// the button that opens the documents picker (loaded on first use).
import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import type { ChatKnowledgeQuery } from "../../gql/graphql";
import { request } from "../../lib/graphql";
import { isGrounded, knowledgeSummary } from "./knowledge";
import { ChatKnowledge } from "./operations";
import { writtenPosition } from "./writes";

const KnowledgePicker = lazy(() =>
  import("./KnowledgePicker").then((module) => ({ default: module.KnowledgePicker })),
);

export type Knowledge = ChatKnowledgeQuery["chatKnowledge"];

export function KnowledgeBar({ chatId, writable }: { chatId: string; writable: boolean }) {
  const [knowledge, setKnowledge] = useState<Knowledge | null>(null);
  const [picking, setPicking] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const generation = useRef(0);

  const load = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const { chatKnowledge } = await request(ChatKnowledge, { chatId, afterPosition: writtenPosition(chatId) });
      if (mine === generation.current) setKnowledge(chatKnowledge);
    } catch {
      // Not shown rather than wrong: the conversation says what else failed.
      if (mine === generation.current) setKnowledge(null);
    }
  }, [chatId]);

  useEffect(() => {
    void load();
  }, [load]);

  if (!knowledge) return null;
  const close = () => {
    setPicking(false);
    requestAnimationFrame(() => button.current?.focus());
  };
  return (
    <>
      <div className="knowledge-bar">
        <p className="knowledge-summary" data-testid="knowledge">
          <span className="knowledge-label">Knowledge:</span>{" "}
          <span className={isGrounded(knowledge) ? undefined : "hint"}>{knowledgeSummary(knowledge)}</span>
        </p>
        {writable && (
          <button type="button" ref={button} aria-haspopup="dialog" onClick={() => setPicking(true)}>
            Knowledge
          </button>
        )}
      </div>
      {picking && (
        <Suspense fallback={null}>
          <KnowledgePicker
            chatId={chatId}
            current={knowledge}
            onClose={close}
            onSaved={() => {
              void load();
              close();
            }}
          />
        </Suspense>
      )}
    </>
  );
}
