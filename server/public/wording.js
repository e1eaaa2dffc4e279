// Sentences for people instead of API error codes: "“scan.pdf” is a PDF document, not an image…"
// rather than `unsupported_media_type`. Branches on the API's `reason` (the specific code) and
// `code` (the kind); the format a file turned out to be comes from the server's message, whose
// wording model/errors.ts fixes ("PDF images are not supported: …", "could not decode the JPEG
// image: …"), because the server judges the bytes, not the file name. Pure: no DOM, no fetch.

const ACCEPTED = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';
const CONVERT = 'Save it as a JPEG or PNG and try again.';

/** “name” for a file, "image #12" for a stored image; `subject` is what the sentence is about. */
export function subjectOf(fileName, id) {
  if (fileName) return `“${fileName}”`;
  return id === undefined ? 'the image' : `image #${id}`;
}

const capital = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const match = (re, s) => re.exec(s ?? '')?.[1];

function megabytes(bytes) {
  const mb = Number(bytes) / 1e6;
  return mb >= 1 ? `${Math.round(mb)} MB` : `${Math.round(Number(bytes) / 1e3)} kB`;
}

/** A format the server named and refused (`… images are not supported`). */
function unsupportedSentence(subject, format) {
  switch (format) {
    case 'HEIC':
    case 'HEIF':
      return `${capital(subject)} is a ${format} photo (the iPhone's default format), which this server cannot read. ${CONVERT}`;
    case 'PDF':
      return `${capital(subject)} is a PDF document, not an image. Export the page as a JPEG or PNG to search with it.`;
    case 'MP4/QuickTime video':
      return `${capital(subject)} is a video, not a still image. Take a still frame as a JPEG or PNG to search with it.`;
    case 'SVG':
      return `${capital(subject)} is an SVG drawing, which this server does not render. ${CONVERT}`;
    case undefined:
      return `${capital(subject)} is not an image this server can read: use a ${ACCEPTED} file.`;
    default:
      return `${capital(subject)} is a ${format} file, which this server cannot read. ${CONVERT}`;
  }
}

/** Bytes the server could not decode: not an image at all, empty, or a damaged image. */
function undecodableSentence(subject, format) {
  if (format === 'empty') return `${capital(subject)} is empty: it has no bytes to read.`;
  if (format === undefined || format === 'unrecognised') return `${capital(subject)} is not an image: its contents are not ${ACCEPTED}.`;
  return `${capital(subject)} looks like a ${format} image but is damaged or cut short, so it cannot be read.`;
}

/**
 * The sentence to show for a failed call. `err` is an ApiError (status, code, reason, message) or
 * any Error; `subject` comes from subjectOf.
 */
export function humanError(err, subject = 'the image') {
  const reason = err?.reason ?? err?.code;
  const message = err?.message ?? '';
  switch (reason) {
    case 'unsupported_media_type':
      return unsupportedSentence(subject, match(/^(.+?) images are not supported/, message));
    case 'undecodable_image':
      return undecodableSentence(subject, match(/^could not decode the (.+?) image/, message));
    case 'image_too_large': {
      const size = match(/^image is (\d+×\d+)/, message);
      return `${capital(subject)} is ${size ? `${size} pixels, ` : ''}more than this server accepts. Resize it and try again.`;
    }
    case 'payload_too_large': {
      const limit = match(/limit (?:of )?(\d+) bytes/, message);
      return `${capital(subject)} is too large to upload${limit ? ` (this server accepts up to ${megabytes(limit)})` : ''}. Resize or compress it and try again.`;
    }
    case 'missing_image':
      return `No image was sent for ${subject}: choose the file again.`;
    case 'network':
      return 'The server could not be reached. Check that it is still running, then try again.';
    case 'unauthorized':
      return 'This server needs its API token, and none or a wrong one was given. Reload the page to enter it.';
    case 'not_found':
      return `${capital(subject)} is no longer in the collection.`;
    case 'storage_full':
    case 'insufficient_storage':
      return `The server's disk is full, so ${subject} was not stored. Try again once space is freed.`;
    case 'overloaded':
    case 'timeout':
      return 'The server is busy right now. Try again in a few seconds.';
    case 'not_ready':
      return 'The server is still starting. Try again in a few seconds.';
    case 'shutting_down':
      return 'The server is shutting down. Try again once it is back.';
    case 'internal':
      return `Something went wrong on the server while reading ${subject}. Try again; if it keeps failing, the server's log says why.`;
    default:
      // Other refusals (a parameter out of range, a read-only index…): the server's own message
      // names what was wrong, which is the most useful thing to show.
      return message ? `Could not use ${subject}: ${message.replace(/\.$/, '')}.` : `Could not use ${subject}.`;
  }
}
