// Sightline page: pick or drop an image → top-5 labels and similar images; click a result to
// search from it. Plain DOM, no framework, nothing loaded from the network but this server.
const $ = (id) => document.getElementById(id);
const K = 12;

function showError(message) {
  const el = $('error');
  el.textContent = message;
  el.hidden = !message;
}

// With SIGHTLINE_PROTECT=all every API call needs the bearer token: asked once on the first 401,
// kept for this tab only (sessionStorage), sent on every call, thumbnails included.
const TOKEN_KEY = 'sightline-token';

function authHeaders(headers = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}

async function authedFetch(path, init = {}) {
  const send = () => fetch(path, { ...init, headers: authHeaders(init.headers) });
  let res = await send();
  if (res.status === 401) {
    const token = window.prompt('This server needs its API token (SIGHTLINE_API_TOKEN):');
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      res = await send();
    }
  }
  return res;
}

async function api(path, init) {
  const res = await authedFetch(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
  return body;
}

/** An <img> cannot send a header: with a token, thumbnails are fetched and shown as blob URLs. */
function setImage(img, url) {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    img.src = url;
    return;
  }
  void authedFetch(url)
    .then((res) => (res.ok ? res.blob() : undefined))
    .then((blob) => {
      if (blob) img.src = URL.createObjectURL(blob);
    });
}

async function refreshStatus() {
  try {
    const info = await api('/v1/info');
    const ready = info.ready ? '' : ` · not ready: ${info.reason}`;
    modelLabels = info.model.labels;
    const knows = modelLabels.length <= 12 ? modelLabels.join(', ') : `${modelLabels.length} labels`;
    $('status').textContent = `model ${info.model.name} ${info.model.version} (${info.model.provider}), knows: ${knows} · ${info.index.size} images indexed${ready}`;
    $('status').dataset.size = String(info.index.size);
  } catch (err) {
    $('status').textContent = `server unavailable: ${err.message}`;
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
    ...results.map((r) => {
      const li = document.createElement('li');
      li.className = 'result';
      li.tabIndex = 0;
      li.dataset.id = String(r.id);
      li.title = r.source;
      const img = document.createElement('img');
      setImage(img, r.thumbnail_url);
      img.alt = r.labels[0] ?? `image ${r.id}`;
      img.loading = 'lazy';
      const label = document.createElement('div');
      label.className = 'caption';
      label.textContent = r.labels[0] ?? '';
      const cap = document.createElement('div');
      cap.className = 'caption distance';
      cap.textContent = r.distance === null ? `hamming ${r.hamming}` : `distance ${r.distance.toFixed(2)}`;
      li.append(img, label, cap);
      const open = () => void searchFromResult(r.id);
      li.addEventListener('click', open);
      li.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') open();
      });
      return li;
    }),
  );
  if (results.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'The index is empty.';
    list.append(li);
  }
  $('results-section').hidden = false;
}

function setPreview(src) {
  if (src.startsWith('blob:')) $('preview').src = src;
  else setImage($('preview'), src);
  $('preview').hidden = false;
  $('drop-text').textContent = 'Drop or click for another image';
}

async function searchFile(file) {
  showError('');
  setPreview(URL.createObjectURL(file));
  const init = () => ({ method: 'POST', headers: { 'content-type': file.type || 'application/octet-stream' }, body: file });
  try {
    const [cls, found] = await Promise.all([api('/v1/classify?topk=5', init()), api(`/v1/search?k=${K}`, init())]);
    renderLabels(cls.predictions, `${unknownNote(cls)}${cls.crops} crops, agreement ${cls.agreement}/${cls.crops}, ood score ${cls.ood_score}, ${cls.timings_ms.total.toFixed(0)} ms`);
    renderResults(found.results);
  } catch (err) {
    showError(err.message);
  }
}

async function searchFromResult(id) {
  showError('');
  try {
    const [record, similar] = await Promise.all([api(`/v1/images/${id}`), api(`/v1/images/${id}/similar?k=${K}`)]);
    setPreview(record.thumbnail_url);
    renderLabels(record.label_scores, `stored labels of image #${id} (${record.source.split('/').pop()})`);
    renderResults(similar.results);
  } catch (err) {
    showError(err.message);
  }
}

const drop = $('drop');
$('file').addEventListener('change', (e) => {
  const file = e.target.files?.[0];
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
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') $('file').click();
});

await refreshStatus();
setInterval(refreshStatus, 10000);
