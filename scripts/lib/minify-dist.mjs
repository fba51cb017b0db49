// trunk's post_build hook (Trunk.toml). In release builds, for each wasm of the staged dist/ and
// its wasm-bindgen JS glue:
//   1. gives the wasm's imports and exports short names (`a`, `b`, …) and renames them in the
//      glue to match — nothing else of the wasm changes;
//   2. minifies the glue with terser;
//   3. puts the new files' hashes into the `integrity` attributes that trunk wrote into
//      index.html for them (the preload links), so the browser still accepts them.
//
// Why (issue 7 counts every file of dist/): wasm-bindgen names each import after the JS it
// calls plus a 16-digit hash (`__wbg_getItem_49556a3e59cfb688`) and each closure export after
// its Rust type; written once in the wasm and once in the glue, these names were ~3.8 KB of the
// gzipped bundle. And trunk's own JS minifier cannot parse wasm-bindgen's glue
// (`export { … as default }`): it warns and keeps the glue as it is.
// Debug builds (`trunk serve`, scripts/dev) are left alone.
import { createHash } from "node:crypto";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { minify } from "terser";

const staging = process.env.TRUNK_STAGING_DIR;
if (process.env.TRUNK_PROFILE !== "release") process.exit(0);
if (!staging) throw new Error("TRUNK_STAGING_DIR is not set: run me as a trunk hook");

// --- The wasm binary format, as far as the import and export sections go. ---

function readU32(bytes, at) {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    const byte = bytes[at.pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return value;
  }
}

function u32(value) {
  const out = [];
  do {
    const byte = value % 128;
    value = Math.floor(value / 128);
    out.push(value > 0 ? byte | 0x80 : byte);
  } while (value > 0);
  return out;
}

const readName = (bytes, at) => {
  const length = readU32(bytes, at);
  const text = new TextDecoder().decode(bytes.subarray(at.pos, at.pos + length));
  at.pos += length;
  return text;
};
const encodeName = (text) => {
  const utf8 = new TextEncoder().encode(text);
  return [...u32(utf8.length), ...utf8];
};

// Reads past an import's description (function, table, memory or global) and returns its bytes.
function importDesc(bytes, at) {
  const start = at.pos;
  const kind = bytes[at.pos++];
  const valueType = () => {
    if (bytes[at.pos] === 0x63 || bytes[at.pos] === 0x64)
      throw new Error("minify-dist: typed references are not handled");
    at.pos++;
  };
  const limits = () => {
    const flags = bytes[at.pos++];
    readU32(bytes, at);
    if (flags & 1) readU32(bytes, at);
  };
  if (kind === 0) readU32(bytes, at); // function: its type's index
  else if (kind === 1) (valueType(), limits()); // table
  else if (kind === 2) limits(); // memory
  else if (kind === 3) (valueType(), at.pos++); // global: type, mutability
  else throw new Error(`minify-dist: import kind ${kind} is not handled`);
  return bytes.subarray(start, at.pos);
}

// Short names: a…z A…Z, then two characters, and so on.
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
function shortName(index) {
  let text = "";
  do {
    text = ALPHABET[index % ALPHABET.length] + text;
    index = Math.floor(index / ALPHABET.length) - 1;
  } while (index >= 0);
  return text;
}

/** Renames every import (module too) and export of `wasm`; returns the bytes and the names. */
function renameImportsAndExports(wasm) {
  const out = [wasm.subarray(0, 8)]; // chunks: magic number and version, then the sections
  const imports = new Map(); // old name -> new
  const exports = new Map();
  const modules = new Set();
  const at = { pos: 8 };
  while (at.pos < wasm.length) {
    const id = wasm[at.pos++];
    const size = readU32(wasm, at);
    const end = at.pos + size;
    let body = wasm.subarray(at.pos, end);
    if (id === 2 || id === 7) {
      const count = readU32(wasm, at);
      const next = [...u32(count)];
      for (let i = 0; i < count; i++) {
        if (id === 2) {
          modules.add(readName(wasm, at));
          const old = readName(wasm, at);
          if (imports.has(old)) throw new Error(`minify-dist: import ${old} twice`);
          imports.set(old, shortName(imports.size));
          next.push(...encodeName("a"), ...encodeName(imports.get(old)), ...importDesc(wasm, at));
        } else {
          const old = readName(wasm, at);
          exports.set(old, shortName(exports.size));
          const kind = wasm[at.pos++];
          next.push(...encodeName(exports.get(old)), kind, ...u32(readU32(wasm, at)));
        }
      }
      if (at.pos !== end) throw new Error(`minify-dist: section ${id} was not read to its end`);
      body = Uint8Array.from(next);
    }
    out.push(Uint8Array.of(id, ...u32(body.length)), body);
    at.pos = end;
  }
  if (modules.size !== 1) throw new Error(`minify-dist: imports from ${[...modules]}, not one module`);
  return { bytes: Buffer.concat(out), imports, exports, module: [...modules][0] };
}

// --- The glue: wasm-bindgen's imports object and its `wasm.<export>` uses. ---

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function renameInGlue(js, { imports, exports, module }) {
  const replaceOnce = (pattern, by, what) => {
    let count = 0;
    js = js.replace(pattern, () => (count++, by));
    if (count !== 1) throw new Error(`minify-dist: ${what} found ${count} times in the glue`);
  };
  // Each import is one key of the imports object.
  for (const [old, short] of imports) {
    replaceOnce(new RegExp(`\\b${escape(old)}\\b`, "g"), short, `import ${old}`);
  }
  replaceOnce(new RegExp(`"${escape(module)}"`, "g"), '"a"', `module "${module}"`);
  // Exports are only ever read as `wasm.<name>` (the instance's exports object).
  for (const [old, short] of exports) {
    js = js.replace(new RegExp(`\\bwasm\\.${escape(old)}\\b`, "g"), `wasm.${short}`);
  }
  for (const [, used] of js.matchAll(/\bwasm\.([\w$]+)/g)) {
    if (![...exports.values()].includes(used)) throw new Error(`minify-dist: wasm.${used} is no export`);
  }
  return js;
}

// --- dist/ ---

// trunk's `integrity` values are `<algorithm>-<base64 digest>` of the file's bytes.
const ALGORITHMS = ["sha256", "sha384", "sha512"];
const integrity = (algorithm, bytes) =>
  `${algorithm}-${createHash(algorithm).update(bytes).digest("base64")}`;

const htmlPath = join(staging, "index.html");
let html = await readFile(htmlPath, "utf8");
const changed = new Map(); // file name -> [old bytes, new bytes]

const files = await readdir(staging);
for (const wasmName of files.filter((n) => n.endsWith("_bg.wasm"))) {
  const jsName = wasmName.replace(/_bg\.wasm$/, ".js");
  if (!files.includes(jsName)) throw new Error(`minify-dist: ${wasmName} has no glue ${jsName}`);
  const wasm = await readFile(join(staging, wasmName));
  const renamed = renameImportsAndExports(wasm);
  const js = await readFile(join(staging, jsName));
  const glue = renameInGlue(js.toString("utf8"), renamed);
  changed.set(wasmName, [wasm, renamed.bytes]);
  changed.set(jsName, [js, Buffer.from(glue, "utf8")]);
}
for (const jsName of files.filter((n) => n.endsWith(".js"))) {
  const [before, source] = changed.get(jsName) ?? [await readFile(join(staging, jsName))];
  const { code } = await minify((source ?? before).toString("utf8"), {
    module: true, // an ES module: its top level may be renamed, its exports are kept
    ecma: 2020,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false },
  });
  changed.set(jsName, [before, Buffer.from(code, "utf8")]);
}

for (const [file, [before, after]] of changed) {
  await writeFile(join(staging, file), after);
  const fresh = ALGORITHMS.map((algorithm) => integrity(algorithm, after));
  for (const algorithm of ALGORITHMS) {
    html = html.replaceAll(integrity(algorithm, before), integrity(algorithm, after));
  }
  // Every tag that names the file and has an integrity must now carry the new hash.
  for (const tag of html.match(/<[^>]*>/g) ?? []) {
    const value = tag.includes(file) && /\bintegrity=["']?([^"'\s>]+)/.exec(tag)?.[1];
    if (value && !fresh.includes(value)) throw new Error(`minify-dist: stale integrity in ${tag}`);
  }
  console.log(`minify-dist: ${file} ${before.length} -> ${after.length} bytes`);
}
await writeFile(htmlPath, html);
