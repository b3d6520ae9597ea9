/* nhiwatch dashboard: plain ES2020 modules, no libraries, no build step.
 *
 * This entry module is the router: the #fragment names the page, each page is a module under js/.
 * Everything that comes from the API (ARNs, API names, user agents, titles...) may be
 * attacker-influenced, so pages build the DOM with js/dom.js only (createElement/textContent, every
 * string through visible()): no module assigns innerHTML, and every link is a #fragment the pages
 * build (a javascript: URL from an event is never an href).
 */

import { captureTokenFromUrl, loadSession } from './js/api.js';
import { h, loading, view } from './js/dom.js';
import { pageFindings } from './js/findings.js';
import { pageIdentity } from './js/identity.js';
import { pageIncident } from './js/incident.js';
import { pageIncidents } from './js/incidents.js';
import { pageInventory } from './js/inventory.js';
import { pageOverview } from './js/overview.js';
import { handleError, whenTokenSaved } from './js/widgets.js';

let routeGen = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = (q >= 0 ? raw.slice(0, q) : raw) || '/';
  return { path, params: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
}

function markNav(path) {
  const current = path === '/' ? 'overview'
    : path.startsWith('/inventory') || path.startsWith('/identity') ? 'inventory'
      : path.startsWith('/incident') ? 'incidents'
        : path.startsWith('/findings') ? 'findings' : '';
  for (const a of document.querySelectorAll('#topnav a[data-nav]')) {
    const on = a.dataset.nav === current;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function route() {
  const gen = ++routeGen;
  const { path, params } = parseHash();
  const main = view();
  markNav(path);
  main.replaceChildren(loading());
  const ctx = {
    params,
    alive: () => gen === routeGen,
    show(node) { if (gen === routeGen) main.replaceChildren(node); },
  };
  try {
    let m;
    if (path === '/' || path === '/overview') await pageOverview(ctx);
    else if (path === '/inventory') pageInventory(ctx);
    else if (path === '/identity') await pageIdentity(ctx);
    else if (path === '/incidents') await pageIncidents(ctx);
    else if ((m = path.match(/^\/incident\/([^/]+)$/))) await pageIncident(ctx, decodeURIComponent(m[1]));
    else if (path === '/findings') pageFindings(ctx);
    else ctx.show(h('div', { class: 'page' }, h('h1', null, 'Not found'), h('p', { class: 'error' }, `no page ${path}`)));
    if (ctx.alive()) window.scrollTo(0, 0);
  } catch (err) {
    handleError(err, main, ctx);
  }
}

async function boot() {
  whenTokenSaved(route);
  captureTokenFromUrl();
  window.addEventListener('hashchange', route);
  await loadSession();
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
