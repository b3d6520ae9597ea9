/* Safe DOM building: everything shown may come from an event (ARNs, API names, user agents, titles),
 * so elements are made with createElement/textContent only, never innerHTML. Every text node and
 * attribute value goes through visible(), so control characters and bidi overrides show as escapes
 * instead of reordering what is read. Links are #fragments the pages build (never an event's URL). */

const SVGNS = 'http://www.w3.org/2000/svg';

// Invisible characters (C0 but line breaks and tabs, DEL, C1, format characters such as bidi
// overrides and zero-width spaces, separators, lone surrogates): the same set as the command line's.
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\u{110bd}\u{110cd}\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}]|[\ud800-\udfff]/gu;
const NAMED = { '\r': '\\r' };

/** Text as written, with every invisible character shown as an escape (\x1b, \u202e). */
export function visible(text) {
  return String(text).replace(INVISIBLE, (c) => {
    if (NAMED[c]) return NAMED[c];
    const cp = c.codePointAt(0);
    const hex = cp.toString(16);
    if (cp < 0x100) return `\\x${hex.padStart(2, '0')}`;
    return cp < 0x10000 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
  });
}

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : visible(value));
  }
}

export function appendKids(node, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.appendChild(kid instanceof Node ? kid : document.createTextNode(visible(kid)));
  }
}

/** Build an HTML element; string children become text nodes, never markup. */
export function h(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  appendKids(node, kids);
  return node;
}

/** Same for SVG elements. */
export function s(tag, attrs, ...kids) {
  const node = document.createElementNS(SVGNS, tag);
  setAttrs(node, attrs);
  appendKids(node, kids);
  return node;
}

export const view = () => document.getElementById('view');
export const loading = (what) => h('div', { class: 'loading' }, what ? `Loading ${what}…` : 'Loading…');
export const empty = (text) => h('p', { class: 'empty' }, text);
export const mono = (text, cls) => h('span', { class: cls ? `mono ${cls}` : 'mono' }, text);
