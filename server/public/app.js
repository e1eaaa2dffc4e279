// Sightline page: pick or drop an image → top-5 labels and similar images; click a result to
// search from it; add an uploaded image to the collection. Plain DOM, no framework, nothing
// loaded from the network but this server.
import { api, setImage, uploadInit } from './api.js';
import { initCollection } from './collection.js';
import { tile } from './tiles.js';
import { humanError, subjectOf } from './wording.js';

const $ = (id) => document.getElementById(id);
const K = 12;

function showError(message) {
  const el = $('error');
  el.textContent = message;
  el.hidden = !message;
}

async function refreshStatus() {
  try {
    const info = await api('/v1/info');
    const ready = info.ready ? '' : ` · not ready: ${info.reason}`;
    modelLabels = info.model.labels;
    collection.setLabels(modelLabels);
    const knows = modelLabels.length <= 12 ? modelLabels.join(', ') : `${modelLabels.length} labels`;
    $('status').textContent = `model ${info.model.name} ${info.model.version} (${info.model.provider}), knows: ${knows} · ${info.index.size} images indexed${ready}`;
    $('status').dataset.size = String(info.index.size);
  } catch (err) {
    $('status').textContent = humanError(err);
  }
}

let modelLabels = [];

/** The answer for an image the model does not know: say which labels it is none of. */
function unknownNote(cls) {
  if (!cls.unknown) return '';
  const names = modelLabels.length <= 12 ? modelLabels.join(', ') : `${modelLabels.slice(0, 8).join(', ')}, … (${modelLabels.length} labels)`;
  return `Unknown image: none of ${names}. The scores below are the model's guesses anyway. `;
}

function renderLabels(predictions, meta) {
  const list = $('predictions');
  list.replaceChildren(
    ...predictions.map((p) => {
      const li = document.createElement('li');
      li.className = 'prediction';
      const name = document.createElement('span');
      name.className = 'label';
      name.textContent = p.label;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${(p.probability * 100).toFixed(1)}%`;
      bar.append(fill);
      const prob = document.createElement('span');
      prob.className = 'prob';
      prob.textContent = `${(p.probability * 100).toFixed(1)}%`;
      li.append(name, bar, prob);
      return li;
    }),
  );
  $('classify-meta').textContent = meta;
  $('labels-section').hidden = false;
}

function renderResults(results) {
  const list = $('results');
  list.replaceChildren(
    ...results.map((r) =>
      tile({
        id: r.id,
        thumbnailUrl: r.thumbnail_url,
        title: r.source,
        alt: r.labels[0],
        captions: [
          ['', r.labels[0] ?? ''],
          ['distance', r.distance === null ? `hamming ${r.hamming}` : `distance ${r.distance.toFixed(2)}`],
        ],
        onOpen: () => void searchFromResult(r.id),
      }),
    ),
  );
  if (results.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'The index is empty.';
    list.append(li);
  }
  $('results-section').hidden = false;
}

// Each new image or clicked result starts a new "turn": the previous result is cleared at once,
// and an answer that arrives after a newer turn began is dropped, so no result ever sits under
// an image it does not belong to.
let turn = 0;
let chosenFile;
let previewUrl;

function clearResult() {
  $('predictions').replaceChildren();
  $('classify-meta').textContent = '';
  $('labels-section').hidden = true;
  $('results').replaceChildren();
  $('results-section').hidden = true;
  $('add-section').hidden = true;
  $('add').disabled = false;
  $('add-status').textContent = '';
  delete $('add-status').dataset.id;
  $('show-added').hidden = true;
  showError('');
}

function beginTurn(file) {
  turn += 1;
  chosenFile = file;
  clearResult();
  return turn;
}

/** The preview shows only once it has loaded: a PDF or HEIC the browser cannot draw leaves none. */
function setPreview(src) {
  const img = $('preview');
  img.hidden = true;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = src.startsWith('blob:') ? src : undefined;
  img.onload = () => {
    img.hidden = false;
  };
  img.onerror = () => {
    img.hidden = true;
  };
  if (previewUrl) img.src = src;
  else setImage(img, src);
  $('drop-text').textContent = 'Drop or click for another image';
}

async function searchFile(file) {
  const mine = beginTurn(file);
  setPreview(URL.createObjectURL(file));
  try {
    const [cls, found] = await Promise.all([api('/v1/classify?topk=5', uploadInit(file)), api(`/v1/search?k=${K}`, uploadInit(file))]);
    if (mine !== turn) return;
    renderLabels(cls.predictions, `${unknownNote(cls)}${cls.crops} crops, agreement ${cls.agreement}/${cls.crops}, ood score ${cls.ood_score}, ${cls.timings_ms.total.toFixed(0)} ms`);
    renderResults(found.results);
    $('add-section').hidden = false;
  } catch (err) {
    if (mine !== turn) return;
    clearResult();
    showError(humanError(err, subjectOf(file.name)));
  }
}

async function searchFromResult(id) {
  const mine = beginTurn(undefined);
  try {
    const [record, similar] = await Promise.all([api(`/v1/images/${id}`), api(`/v1/images/${id}/similar?k=${K}`)]);
    if (mine !== turn) return;
    setPreview(record.thumbnail_url);
    renderLabels(record.label_scores, `stored labels of image #${id} (${record.source.split('/').pop()})`);
    renderResults(similar.results);
  } catch (err) {
    if (mine !== turn) return;
    clearResult();
    $('preview').hidden = true; // still the previous image's
    showError(humanError(err, subjectOf(undefined, id)));
  }
}

/** Uploads the image on show to the collection: its new id, or the id it already had (same bytes). */
async function addToCollection() {
  const file = chosenFile;
  if (!file) return;
  const mine = turn;
  $('add').disabled = true;
  $('add-status').textContent = 'Adding…';
  try {
    const record = await api('/v1/images', uploadInit(file));
    void refreshStatus();
    if (mine !== turn) return;
    $('add-status').textContent = record.created ? `Added to the collection as image #${record.id}.` : `Already in the collection as image #${record.id}.`;
    $('add-status').dataset.id = String(record.id);
    $('show-added').hidden = false;
    $('show-added').onclick = () => void searchFromResult(record.id);
  } catch (err) {
    if (mine !== turn) return;
    $('add').disabled = false;
    $('add-status').textContent = '';
    showError(humanError(err, subjectOf(file.name)));
  }
}

const collection = initCollection({
  open: (id) => {
    window.scrollTo({ top: 0, behavior: 'smooth' });
    void searchFromResult(id);
  },
});
const drop = $('drop');
$('file').addEventListener('change', (e) => {
  const file = e.target.files?.[0];
  e.target.value = ''; // so that choosing the same file again is a new change
  if (file) void searchFile(file);
});
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
}
for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) void searchFile(file);
});
$('add').addEventListener('click', () => void addToCollection());
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') $('file').click();
});

await refreshStatus();
setInterval(refreshStatus, 10000);
