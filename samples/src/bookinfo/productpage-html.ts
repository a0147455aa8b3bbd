// The HTML of bookinfo's product page: the book, its details and its reviews (stars in the
// reviews version's colour), with the messages Istio's task pages tell users to look for when a
// call failed. Everything taken from a response is escaped.
import type { Product } from './catalog.js';

/** The outcome of one upstream call: the parsed JSON, or the message to show instead. */
export type Fetched =
  { readonly ok: true; readonly body: unknown } | { readonly ok: false; readonly error: string };

export interface ProductPageView {
  readonly product: Product;
  readonly user: string | undefined;
  readonly details: Fetched;
  readonly reviews: Fetched;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;color:#222}
nav{background:#2c3e50;color:#fff;padding:.6em 1.2em;display:flex;justify-content:space-between;align-items:center}
nav a,nav button{color:#fff}
main{max-width:60em;margin:1em auto;padding:0 1em}
.columns{display:flex;gap:2em;flex-wrap:wrap}.columns>section{flex:1;min-width:18em}
h3,h4{color:#2c6ea5}blockquote{border-left:4px solid #ddd;margin:1em 0;padding:.2em 1em}
dl.details dt{font-weight:bold}.glyphicon{font-size:1.2em}
.error{color:#a94442}form.login input{margin-right:.4em}
`;

/** The stylesheet served at /static/style.css. */
export const PRODUCTPAGE_CSS = STYLE;

function page(title: string, user: string | undefined, content: string): string {
  const account =
    user === undefined
      ? `<form class="login" method="post" action="login">
<input type="text" name="username" placeholder="User name" aria-label="User name">
<input type="password" name="passwd" placeholder="Password" aria-label="Password">
<button type="submit">Sign in</button></form>`
      : `<span>${escapeHtml(user)} (<a href="logout">sign out</a>)</span>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="static/style.css">
</head>
<body>
<nav><a href="productpage"><b>BookInfo Sample</b></a>${account}</nav>
<main>
${content}
</main>
</body>
</html>
`;
}

/** The product page. */
export function renderProductPage(view: ProductPageView): string {
  const { product } = view;
  const content = `<h3>${escapeHtml(product.title)}</h3>
<p>Summary: ${product.descriptionHtml}</p>
<div class="columns">
<section id="details">
${renderDetails(view.details)}
</section>
<section id="reviews">
${renderReviews(view.reviews)}
</section>
</div>`;
  return page('Simple Bookstore App', view.user, content);
}

function renderDetails(details: Fetched): string {
  if (!details.ok)
    return `<h4 class="error">Error fetching product details!</h4>
<p class="error">${escapeHtml(details.error)}</p>`;
  const d = (details.body ?? {}) as Record<string, unknown>;
  const rows: [string, unknown][] = [
    ['Type', d['type']],
    ['Pages', d['pages']],
    ['Publisher', d['publisher']],
    ['Language', d['language']],
    ['ISBN-10', d['ISBN-10']],
    ['ISBN-13', d['ISBN-13']],
  ];
  return `<h4>Book Details</h4>
<dl class="details">
${rows.map(([k, v]) => `<dt>${k}:</dt><dd>${escapeHtml(scalarText(v))}</dd>`).join('\n')}
</dl>`;
}

/** A JSON scalar as text; anything else (absent, objects) as an empty string. */
function scalarText(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

function renderReviews(reviews: Fetched): string {
  if (!reviews.ok)
    return `<h4 class="error">Error fetching product reviews!</h4>
<p class="error">${escapeHtml(reviews.error)}</p>`;
  const body = (reviews.body ?? {}) as { reviews?: unknown; podname?: unknown; version?: unknown };
  const list = Array.isArray(body.reviews) ? (body.reviews as Record<string, unknown>[]) : [];
  const version = typeof body.version === 'string' ? body.version : '';
  const items = list.map((r) => {
    const text = typeof r['text'] === 'string' ? r['text'] : '';
    const reviewer = typeof r['reviewer'] === 'string' ? r['reviewer'] : '';
    return `<blockquote>
<p>${escapeHtml(text)}</p>
<small>${escapeHtml(reviewer)}</small>
${renderRating(r['rating'])}
</blockquote>`;
  });
  const podname = typeof body.podname === 'string' ? body.podname : 'unknown';
  return `<h4>Book Reviews</h4>
<div class="reviews" data-reviews-version="${escapeHtml(version)}">
${items.join('\n')}
</div>
<dl><dt>Reviews served by:</dt><dd><u>${escapeHtml(podname)}</u></dd></dl>`;
}

function renderRating(rating: unknown): string {
  if (typeof rating !== 'object' || rating === null) return '';
  const r = rating as { stars?: unknown; color?: unknown; error?: unknown };
  if (typeof r.error === 'string') return `<p class="error"><i>${escapeHtml(r.error)}</i></p>`;
  if (typeof r.stars !== 'number') return '';
  const stars = Math.max(0, Math.min(5, Math.round(r.stars)));
  const color = typeof r.color === 'string' && /^[a-z]+$/i.test(r.color) ? r.color : 'black';
  const full = '<span class="glyphicon glyphicon-star">&#9733;</span>'.repeat(stars);
  const empty = '<span class="glyphicon glyphicon-star-empty">&#9734;</span>'.repeat(5 - stars);
  return `<font color="${color}">${full}${empty}</font>`;
}

/** The index page at `/`. */
export function renderIndex(user: string | undefined): string {
  return page(
    'Bookinfo sample',
    user,
    `<h3>Hello! This is a simple bookstore application consisting of four services</h3>
<p>productpage calls details and reviews; reviews v2 and v3 call ratings.</p>
<ul>
<li><a href="productpage">Product page</a></li>
<li><a href="api/v1/products">/api/v1/products</a>: the products (JSON)</li>
<li><code>/api/v1/products/&lt;id&gt;</code>, <code>/api/v1/products/&lt;id&gt;/reviews</code>,
<code>/api/v1/products/&lt;id&gt;/ratings</code></li>
</ul>`,
  );
}
