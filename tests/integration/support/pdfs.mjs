// Real PDF files for tests, made on the fly with pdf-lib (no binary fixtures in the repo).
// Text is drawn with DejaVu Sans (Debian's fonts-dejavu-core, installed by scripts/deps.sh --test),
// embedded as a subset TrueType font: pdf-lib then writes the text as glyph ids plus a ToUnicode
// map, as most real-world PDFs do, so a text extractor has to honour that map (the 14 standard
// fonts could not draw anything outside WinAnsi anyway). encryptedPdf() needs Debian's qpdf.
//
// The *Pdf functions return a Promise of a Buffer; the text is deterministic, so tests can compare
// what the gateway extracted with what was drawn. A page's lines are broken where the text has a
// "\n" and where a line would overflow the page, so an extractor gives the words back with line
// breaks in between: compare with whitespace collapsed (a single word wider than the page is cut
// mid-word, so compare such text with whitespace removed).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fontkit from '@pdf-lib/fontkit';
import { PDFDocument } from 'pdf-lib';

const FONT_PATH = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const PAGE = { width: 595.28, height: 841.89 }; // A4 in points
const MARGIN = 56;
const MAX_SIZE = 12;
const MIN_SIZE = 4;

let fontBytes;
async function dejaVu() {
  fontBytes ??= await readFile(FONT_PATH).catch((e) => {
    throw new Error(`pdfs.mjs needs ${FONT_PATH} (Debian package fonts-dejavu-core): ${e.message}`);
  });
  return fontBytes;
}

// Breaks text into lines no wider than maxWidth: at "\n", then between words, and inside a word
// only when the word alone is too wide. `width(s)` is the width of s at size 1.
function wrap(text, width, size, maxWidth) {
  const limit = maxWidth / size;
  const space = width(' ');
  const lines = [];
  for (const para of text.split('\n')) {
    let line = '';
    let lineWidth = 0;
    for (const word of para.split(/ +/).filter(Boolean)) {
      const w = width(word);
      if (line && lineWidth + space + w <= limit) {
        line += ` ${word}`;
        lineWidth += space + w;
        continue;
      }
      if (line) lines.push(line);
      [line, lineWidth] = ['', 0];
      if (w <= limit) {
        [line, lineWidth] = [word, w];
        continue;
      }
      for (const ch of word) {
        const c = width(ch);
        if (line && lineWidth + c > limit) {
          lines.push(line);
          [line, lineWidth] = ['', 0];
        }
        line += ch;
        lineWidth += c;
      }
    }
    lines.push(line);
  }
  return lines;
}

// One page per string. The font shrinks (down to MIN_SIZE) until a page's text fits on it, so
// nothing is silently cut off; text too long even then is an error in the test, not a smaller PDF.
export async function multiPagePdf(pages) {
  const doc = await PDFDocument.create();
  doc.registerFontkit(fontkit);
  // liga off: with it, fontkit would draw "fi"/"ffi" as one ligature glyph, and an extractor's
  // output would then hinge on how it maps ligatures back to letters.
  const font = await doc.embedFont(await dejaVu(), { subset: true, features: { liga: false } });
  // Fixed dates: the same input gives the same bytes.
  doc.setCreationDate(new Date('2024-01-01T00:00:00Z'));
  doc.setModificationDate(new Date('2024-01-01T00:00:00Z'));
  doc.setProducer('plexus tests (pdf-lib)');
  const usable = { width: PAGE.width - 2 * MARGIN, height: PAGE.height - 2 * MARGIN };
  // pdf-lib measures a string by laying it out with fontkit, which is slow; widths are additive
  // (pdf-lib sums advance widths, no kerning), so each word is measured once, at size 1.
  const widths = new Map();
  const width = (s) => {
    let w = widths.get(s);
    if (w === undefined) widths.set(s, (w = font.widthOfTextAtSize(s, 1)));
    return w;
  };
  for (const [n, text] of pages.entries()) {
    let size = MAX_SIZE;
    let lines = wrap(text, width, size, usable.width);
    while (lines.length * size * 1.25 > usable.height) {
      if (size <= MIN_SIZE) throw new Error(`pdfs.mjs: the text of page ${n + 1} does not fit on one page`);
      size = Math.max(MIN_SIZE, size - 0.5);
      lines = wrap(text, width, size, usable.width);
    }
    const page = doc.addPage([PAGE.width, PAGE.height]);
    const lineHeight = size * 1.25;
    lines.forEach((line, i) => {
      if (line) page.drawText(line, { x: MARGIN, y: PAGE.height - MARGIN - size - i * lineHeight, size, font });
    });
  }
  return Buffer.from(await doc.save());
}

// Latin with diacritics, typographic punctuation, Greek and Cyrillic: all in DejaVu Sans (CJK is
// not, so none here). Lines are short so that no wrapping adds breaks of its own.
export const unicodePages = [
  'Grüße aus Köln — naïve café, crème brûlée à la façon.\nÄrger, Öl, Übermut, ß; “quotes” ‘single’ – dash … € £ ©',
  'Greek: Ωμέγα, καλημέρα κόσμε\nCyrillic: Привет, мир! Съешь же ещё этих мягких французских булок.',
];
export const unicodePdf = () => multiPagePdf(unicodePages);

const LOREM = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et ' +
  'dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo').split(' ');

// pageCount pages of "Page N: " followed by wordsPerPage words cycling through LOREM, shifted per page so pages
// differ; the same arguments always give the same text (largePdfPages gives it without a PDF).
export function largePdfPages(pageCount, wordsPerPage) {
  return Array.from({ length: pageCount }, (_, p) => {
    const words = Array.from({ length: wordsPerPage }, (_, w) => LOREM[(p * 7 + w) % LOREM.length]);
    return `Page ${p + 1}: ${words.join(' ')}`;
  });
}
export const largePdf = (pageCount, wordsPerPage) => multiPagePdf(largePdfPages(pageCount, wordsPerPage));

// The user password is required to open the file (an owner password alone would only restrict
// printing/copying, and every parser would still read the text).
export const encryptedPasswords = { user: 'plexus-user-pw', owner: 'plexus-owner-pw' };
export const encryptedPages = ['This text is secret.', 'Second secret page.'];

// AES-256 encryption by qpdf, through a temporary folder that is removed whatever happens.
export async function encryptedPdf(pages = encryptedPages) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plexus-pdf-'));
  try {
    const plain = path.join(dir, 'in.pdf');
    const out = path.join(dir, 'out.pdf');
    await writeFile(plain, await multiPagePdf(pages));
    await promisify(execFile)('qpdf', ['--encrypt', encryptedPasswords.user, encryptedPasswords.owner, '256', '--', plain, out]).catch((e) => {
      throw new Error(`pdfs.mjs: qpdf failed (Debian package qpdf): ${e.stderr || e.message}`);
    });
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// A PDF header and then bytes that are all >= 0x80: no "obj", "xref" or "trailer" anywhere, so
// not even a repairing parser (poppler and qpdf both rebuild broken xref tables by scanning for
// objects) finds anything to recover.
export async function corruptPdf() {
  const junk = Buffer.alloc(2048);
  let x = 12345;
  for (let i = 0; i < junk.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0; // fixed LCG: the same bytes every run
    junk[i] = 0x80 | (x >>> 24);
  }
  return Buffer.concat([Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'), junk]);
}

// A valid 1x1 PNG: something real that is not a PDF, e.g. for a body whose data URL claims it is one.
export async function notAPdf() {
  return Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
}

export const dataUrl = (buf, mime = 'application/pdf') => `data:${mime};base64,${Buffer.from(buf).toString('base64')}`;
