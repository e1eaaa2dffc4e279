// The page's sentences (server/public/wording.js) read the format out of the server's error
// messages. This checks that contract from the real errors: bytes through the real decoder, the
// real error → response mapping, then the page's function; a changed message wording fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeImage } from '../../model/image/decode.js';
import type { PreprocessContract } from '../../model/contract.js';
import { IndexStorageFullError } from '../../index/index.js';
import { describeError, ServiceUnavailableError } from '../../server/errors.js';
import { brokenJpeg, heicHeader, hugePngHeader, image } from './helpers.js';

interface ApiErrorLike {
  status: number;
  code: string;
  reason: string;
  message: string;
}
type Wording = { humanError: (err: ApiErrorLike, subject?: string) => string; subjectOf: (fileName?: string, id?: number) => string };
// A browser module without types: loaded by path so that tsc does not look for declarations.
const WORDING = new URL('../../server/public/wording.js', import.meta.url).href;
const { humanError, subjectOf } = (await import(WORDING)) as Wording;

const PRE: PreprocessContract = { inputSize: 32, resizeSize: 36, channels: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], background: [255, 255, 255] };
const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

/** What the page receives for an error: the response body's code (kind), reason and message. */
function asReceived(err: unknown): ApiErrorLike {
  const d = describeError(err, 20_000_000);
  return { status: d.status, code: d.kind, reason: d.code, message: d.message };
}

async function decodeFailure(bytes: Buffer): Promise<ApiErrorLike> {
  try {
    await decodeImage(bytes, PRE, { maxPixels: 10_000_000 });
  } catch (err) {
    return asReceived(err);
  }
  throw new Error('decoded without an error');
}

test('refused uploads: each real decoder error becomes a sentence naming the file and what it is', async () => {
  const cases: [string, Buffer, string][] = [
    ['scan.pdf', ascii('%PDF-1.7\n%âãÏÓ\n'), '“scan.pdf” is a PDF document, not an image. Export the page as a JPEG or PNG to search with it.'],
    ['IMG_0412.HEIC', heicHeader(), `“IMG_0412.HEIC” is a HEIC photo (the iPhone's default format), which this server cannot read. Save it as a JPEG or PNG and try again.`],
    ['clip.mov', Buffer.concat([Buffer.from([0, 0, 0, 0x18]), ascii('ftypqt  '), Buffer.alloc(4), ascii('qt  '), Buffer.alloc(40)]), '“clip.mov” is a video, not a still image. Take a still frame as a JPEG or PNG to search with it.'],
    ['logo.svg', ascii('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'), '“logo.svg” is an SVG drawing, which this server does not render. Save it as a JPEG or PNG and try again.'],
    ['old.bmp', Buffer.concat([ascii('BM'), Buffer.alloc(12), Buffer.from([40]), Buffer.alloc(60)]), '“old.bmp” is a BMP file, which this server cannot read. Save it as a JPEG or PNG and try again.'],
    ['notes.txt', ascii('shopping list\n'), '“notes.txt” is not an image: its contents are not JPEG, PNG, WebP, GIF, TIFF or AVIF.'],
    ['empty.png', Buffer.alloc(0), '“empty.png” is empty: it has no bytes to read.'],
    ['cut.jpg', brokenJpeg(), '“cut.jpg” looks like a JPEG image but is damaged or cut short, so it cannot be read.'],
    ['pano.png', hugePngHeader(20_000, 10_000), '“pano.png” is 20000×10000 pixels, more than this server accepts. Resize it and try again.'],
  ];
  for (const [name, bytes, sentence] of cases) assert.equal(humanError(await decodeFailure(bytes), subjectOf(name)), sentence, name);
  // A good image is not an error (the cases above are not passing by accident).
  await decodeImage(image('dog.jpg'), PRE, { maxPixels: 10_000_000 });
});

test('other failures: size limits, a busy or full server, a stored image, and no server at all', () => {
  const multer = Object.assign(new Error('File too large'), { name: 'MulterError', code: 'LIMIT_FILE_SIZE' });
  assert.equal(humanError(asReceived(multer), subjectOf('raw.tif')), '“raw.tif” is too large to upload (this server accepts up to 20 MB). Resize or compress it and try again.');
  const busy = asReceived(new ServiceUnavailableError('overloaded', 'queue full'));
  assert.equal(humanError(busy, subjectOf('a.jpg')), 'The server is busy right now. Try again in a few seconds.');
  const full = asReceived(new IndexStorageFullError('add', 'ENOSPC'));
  assert.equal(humanError(full, subjectOf('a.jpg')), `The server's disk is full, so “a.jpg” was not stored. Try again once space is freed.`);
  assert.equal(humanError({ status: 404, code: 'not_found', reason: 'not_found', message: 'no image with id 7' }, subjectOf(undefined, 7)), 'Image #7 is no longer in the collection.');
  assert.equal(humanError({ status: 0, code: 'network', reason: 'network', message: 'Failed to fetch' }), 'The server could not be reached. Check that it is still running, then try again.');
  // Anything else keeps the server's own message, which names the parameter and the value.
  const other = { status: 400, code: 'invalid_argument', reason: 'invalid_argument', message: `'topk' must be an integer in [1, 100], got 0` };
  assert.equal(humanError(other, subjectOf('a.jpg')), `Could not use “a.jpg”: 'topk' must be an integer in [1, 100], got 0.`);
});
