// Test support (not a test file): a strict little XML reader for checking files the tools write
// (JUnit). It walks the text character by character and throws on anything malformed: an
// unclosed or mismatched tag, a bare `<` or `&`, an unknown entity, a duplicate attribute,
// text outside the root element.

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const isNameChar = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c === "-" || c === "_" || c === ":" || c === ".";
const isSpace = (c: string) => c === " " || c === "\n" || c === "\t" || c === "\r";

export function parseXml(text: string): XmlElement {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`malformed XML at ${i}: ${why}`);
  };
  const decode = (raw: string): string => {
    let out = "";
    for (let k = 0; k < raw.length; k++) {
      const c = raw[k]!;
      if (c === "<") fail("bare < in text");
      if (c !== "&") {
        out += c;
        continue;
      }
      const end = raw.indexOf(";", k);
      if (end < 0) fail("bare &");
      const name = raw.slice(k + 1, end);
      const value = ENTITIES[name];
      if (value === undefined) fail(`unknown entity &${name};`);
      out += value;
      k = end;
    }
    return out;
  };
  const name = (): string => {
    const start = i;
    while (i < text.length && isNameChar(text[i]!)) i++;
    if (i === start) fail("expected a name");
    return text.slice(start, i);
  };
  const skipSpace = () => {
    while (i < text.length && isSpace(text[i]!)) i++;
  };
  if (text.startsWith("<?xml")) {
    i = text.indexOf("?>");
    if (i < 0) fail("unterminated declaration");
    i += 2;
  }
  skipSpace();
  const element = (): XmlElement => {
    if (text[i] !== "<") fail("expected <");
    i++;
    const el: XmlElement = { name: name(), attributes: {}, children: [], text: "" };
    for (;;) {
      skipSpace();
      if (text.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (text[i] === ">") {
        i++;
        break;
      }
      const attr = name();
      skipSpace();
      if (text[i] !== "=") fail("expected =");
      i++;
      skipSpace();
      const quote = text[i];
      if (quote !== '"' && quote !== "'") fail("expected a quoted value");
      const end = text.indexOf(quote!, i + 1);
      if (end < 0) fail("unterminated attribute");
      if (attr in el.attributes) fail(`duplicate attribute ${attr}`);
      el.attributes[attr] = decode(text.slice(i + 1, end));
      i = end + 1;
    }
    for (;;) {
      const next = text.indexOf("<", i);
      if (next < 0) fail(`unclosed <${el.name}>`);
      el.text += decode(text.slice(i, next));
      i = next;
      if (text.startsWith("</", i)) {
        i += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        skipSpace();
        if (text[i] !== ">") fail("expected >");
        i++;
        return el;
      }
      el.children.push(element());
    }
  };
  const root = element();
  skipSpace();
  if (i !== text.length) fail("content after the root element");
  return root;
}

/** Every descendant element named `name`, depth first. */
export function xmlFind(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    out.push(...xmlFind(c, name));
  }
  return out;
}
