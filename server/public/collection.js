// The collection view: the stored images a page at a time (GET /v1/images, by top label or the
// "unknown" ones) and the near-duplicate groups (GET /v1/duplicates), each with "More" following
// the API's next_cursor. A click on an image opens it like a search result.
import { api } from './api.js';
import { tile } from './tiles.js';
import { humanError } from './wording.js';

const PAGE = 24;
const GROUPS = 10;
const $ = (id) => document.getElementById(id);

export function initCollection({ open }) {
  // Like the page's turns: a new listing (another filter, the other view) drops the answers of
  // the previous one's pages still in flight.
  let listing = 0;
  let view = 'images';
  let cursor = null;

  function note(text) {
    $('collection-note').textContent = text;
  }

  function query(limit) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    return q;
  }

  function imageTile(im) {
    const unknown = im.unknown ? ' · unknown' : '';
    return tile({ id: im.id, thumbnailUrl: im.thumbnail_url, title: im.source, alt: im.labels[0], captions: [['', im.labels[0] ?? ''], ['id', `#${im.id}${unknown}`]], onOpen: () => open(im.id) });
  }

  function groupItem(g) {
    const li = document.createElement('li');
    li.className = 'group';
    const closest = Math.min(...g.pairs.map((p) => p.distance));
    const head = document.createElement('div');
    head.className = 'caption';
    head.textContent = `${g.members.length} images, closest pair at distance ${closest.toFixed(2)}`;
    const row = document.createElement('ul');
    row.className = 'grid';
    row.append(...g.members.map((m) => tile({ id: m.id, thumbnailUrl: m.thumbnail_url, title: m.source, captions: [['id', `#${m.id}`]], onOpen: () => open(m.id) })));
    li.append(head, row);
    return li;
  }

  async function loadPage(mine) {
    $('collection-more').hidden = true;
    note('Loading…');
    try {
      if (view === 'images') {
        const filter = $('collection-filter').value;
        const q = query(PAGE);
        if (filter === ':unknown') q.set('unknown', 'true');
        else if (filter) q.set('label', filter);
        const page = await api(`/v1/images?${q}`);
        if (mine !== listing) return;
        $('collection').append(...page.images.map(imageTile));
        cursor = page.next_cursor;
        const shown = $('collection').children.length;
        note(shown === 0 ? 'No images match.' : `${shown} image${shown === 1 ? '' : 's'} shown${cursor ? '' : ', all of them'}.`);
      } else {
        const page = await api(`/v1/duplicates?${query(GROUPS)}`);
        if (mine !== listing) return;
        $('collection').append(...page.groups.map(groupItem));
        cursor = page.next_cursor;
        note(page.total === 0 ? 'No near-duplicates in the collection.' : `${page.total} group${page.total === 1 ? '' : 's'} of near-duplicates.`);
      }
      $('collection-more').hidden = cursor === null;
    } catch (err) {
      if (mine !== listing) return;
      note(humanError(err, 'the collection'));
    }
  }

  function start(which) {
    view = which;
    listing += 1;
    cursor = null;
    $('collection').replaceChildren();
    $('collection').className = which === 'images' ? 'grid' : 'groups';
    $('collection-filter').hidden = which !== 'images';
    void loadPage(listing);
  }

  $('collection-browse').addEventListener('click', () => start('images'));
  $('collection-duplicates').addEventListener('click', () => start('duplicates'));
  $('collection-filter').addEventListener('change', () => start('images'));
  $('collection-more').addEventListener('click', () => void loadPage(listing));

  return {
    /** The filter's choices: every image, the unknown ones, or one top label of the model's. */
    setLabels(labels) {
      const select = $('collection-filter');
      if (select.options.length > 2) return;
      select.append(
        ...labels.map((label) => {
          const o = document.createElement('option');
          o.value = label;
          o.textContent = `top label ${label}`;
          return o;
        }),
      );
    },
  };
}
