// One image tile (thumbnail and caption lines) that opens the image on click or Enter: used by the
// similar-images grid and the collection view.
import { setImage } from './api.js';

/** `captions`: lines under the thumbnail, each [className, text]; `onOpen`: what a click does. */
export function tile({ id, thumbnailUrl, title, alt, captions, onOpen }) {
  const li = document.createElement('li');
  li.className = 'result';
  li.tabIndex = 0;
  li.dataset.id = String(id);
  if (title) li.title = title;
  const img = document.createElement('img');
  setImage(img, thumbnailUrl);
  img.alt = alt || `image ${id}`;
  img.loading = 'lazy';
  li.append(img);
  for (const [className, text] of captions) {
    const cap = document.createElement('div');
    cap.className = `caption ${className}`.trim();
    cap.textContent = text;
    li.append(cap);
  }
  li.addEventListener('click', onOpen);
  li.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') onOpen();
  });
  return li;
}
