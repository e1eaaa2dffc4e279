#!/usr/bin/env node
// Writes server/public/favicon.ico from favicon.svg: one 32×32 PNG inside an ICO container, for
// the clients that ask for /favicon.ico by convention instead of reading the page's <link rel=icon>.
// Run after changing the SVG: `node scripts/make-favicon.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';

const dir = new URL('../server/public/', import.meta.url);
const SIZE = 32;
const png = await sharp(readFileSync(new URL('favicon.svg', dir)), { density: 300 }).resize(SIZE, SIZE).png().toBuffer();
const header = Buffer.alloc(6 + 16);
header.writeUInt16LE(0, 0); // reserved
header.writeUInt16LE(1, 2); // type: icon
header.writeUInt16LE(1, 4); // one image
header.writeUInt8(SIZE, 6); // width
header.writeUInt8(SIZE, 7); // height
header.writeUInt8(0, 8); // no palette
header.writeUInt8(0, 9); // reserved
header.writeUInt16LE(1, 10); // colour planes
header.writeUInt16LE(32, 12); // bits per pixel
header.writeUInt32LE(png.length, 14); // image size
header.writeUInt32LE(header.length, 18); // image offset
writeFileSync(new URL('favicon.ico', dir), Buffer.concat([header, png]));
console.log(`favicon.ico: ${header.length + png.length} bytes`);
