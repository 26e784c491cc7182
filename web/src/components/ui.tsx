// Shared building blocks: accessible forms, errors, dialogs, loading and empty states.
import {
  type FormEvent,
  type ReactNode,
  useEffect,
  useId,
  useRef,
} from "react";
import type { GraphQLRequestError } from "../lib/graphql";

const MESSAGES: Record<string, string> = {
  UNAUTHENTICATED: "Your sign-in has ended. Sign in again.",
  FORBIDDEN: "You are not allowed to do this.",
  NOT_FOUND: "Not found.",
  RATE_LIMITED: "Too many requests. Try again shortly.",
  NETWORK: "Parley cannot be reached. Check your connection.",
};

/** A typed error as a sentence a person can act on; the server's message when it is specific. */
export function describeError(error: { code: string; message: string }): string {
  if (error.code === "BAD_USER_INPUT" || error.code === "CONFLICT") return error.message;
  return MESSAGES[error.code] ?? error.message;
}

export function ErrorMessage({
  error,
  messages = {},
}: {
  error?: GraphQLRequestError | { code: string; message: string } | null;
  /** What a code means on this screen, where the general sentence would mislead. */
  messages?: Partial<Record<string, string>>;
}) {
  if (!error) return null;
  return (
    <p className="error" role="alert" data-code={error.code}>
      {messages[error.code] ?? describeError(error)}
    </p>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      {label}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    // Focus moves to the new page's heading, so screen readers announce the navigation.
    heading.current?.focus({ preventScroll: true });
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-header">
        <h1 id="page-title" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions && <div className="page-actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function Field({
  label,
  hint,
  children,
}: {
  label: string;
  hint?: string;
  children: (props: { id: string; "aria-describedby"?: string }) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-describedby": hintId })}
      {hint && (
        <small id={hintId} className="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

export function Form({
  onSubmit,
  children,
  label,
}: {
  onSubmit: () => void | Promise<void>;
  children: ReactNode;
  label?: string;
}) {
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void Promise.resolve(onSubmit()).catch(() => undefined);
  };
  return (
    <form onSubmit={submit} aria-label={label} noValidate={false}>
      {children}
    </form>
  );
}

/** A modal confirmation (native <dialog>: focus trap, Escape to cancel). */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  danger = false,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal?.();
    if (!open && dialog.open) dialog.close?.();
  }, [open]);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={onCancel} className="dialog">
      <h2 id={titleId}>{title}</h2>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <button type="button" onClick={onCancel} autoFocus>
          Cancel
        </button>
        <button type="button" className={danger ? "danger" : "primary"} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
