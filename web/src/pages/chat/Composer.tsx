// Writing a message: Enter sends, Shift+Enter starts a new line.
import { type KeyboardEvent, type ReactNode, forwardRef, useId, useImperativeHandle, useRef, useState } from "react";
import { ErrorMessage } from "../../components/ui";
import type { GraphQLRequestError } from "../../lib/graphql";
import { asRequestError } from "../../lib/hooks";

export interface ComposerHandle {
  focus: () => void;
}

interface ComposerProps {
  /** Sends the text; throws to keep it in the box and show the error. */
  onSend: (content: string) => Promise<void>;
  disabled?: boolean;
  /** Shown beside Send (the Stop generating button). */
  children?: ReactNode;
}

export const Composer = forwardRef<ComposerHandle, ComposerProps>(function Composer(
  { onSend, disabled = false, children },
  ref,
) {
  const id = useId();
  const box = useRef<HTMLTextAreaElement>(null);
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<GraphQLRequestError>();
  useImperativeHandle(ref, () => ({ focus: () => box.current?.focus() }), []);

  const send = async () => {
    if (sending || disabled || !text.trim()) return;
    setSending(true);
    setError(undefined);
    try {
      await onSend(text);
      setText("");
    } catch (e) {
      setError(asRequestError(e));
    } finally {
      setSending(false);
      box.current?.focus();
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void send();
    }
  };

  return (
    <form
      className="composer"
      aria-label="Write a message"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <label htmlFor={id} className="visually-hidden">
        Message
      </label>
      <textarea
        id={id}
        ref={box}
        rows={3}
        value={text}
        maxLength={32_000}
        placeholder="Write a message. Enter sends, Shift+Enter adds a line."
        aria-describedby={error ? `${id}-error` : undefined}
        disabled={disabled}
        onChange={(event) => setText(event.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="composer-actions">
        {children}
        <button type="submit" className="primary" disabled={disabled || sending} aria-busy={sending}>
          Send
        </button>
      </div>
      <div id={`${id}-error`}>
        <ErrorMessage error={error} />
      </div>
    </form>
  );
});
