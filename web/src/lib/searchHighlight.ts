// Search hits' highlighted fragments: the server sends them HTML-escaped with matches in
// <em>…</em>. They are parsed into text and matches here and rendered as React text, so no
// string from the server is ever interpreted as HTML: anything but the bare <em> markers stays
// visible as the characters it is.

export interface Segment {
  text: string;
  match: boolean;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** The characters an HTML-escaped string stands for (named, decimal and hex references). */
export function unescapeHtml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X" ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
      return Number.isInteger(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** A fragment as runs of plain text and matches. */
export function highlightSegments(fragment: string): Segment[] {
  const segments: Segment[] = [];
  let match = false;
  for (const part of fragment.split(/(<em>|<\/em>)/)) {
    if (part === "<em>") match = true;
    else if (part === "</em>") match = false;
    else if (part) segments.push({ text: unescapeHtml(part), match });
  }
  return segments;
}
