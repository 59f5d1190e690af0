// Builds the two small tokenizer.json files that the Go tokenizer tests use
// on every machine, including those without the real tokenizers of the npm
// cache. Both are made from scratch here: a byte-level BPE trained on a fixed text (tiny-bytelevel) and
// a byte-fallback BPE over printable ASCII (tiny-fallback). The output is
// deterministic, so gen.js --check can rebuild and compare them.
'use strict';

// The GPT-2 byte-to-character table that byte-level tokenizers use: printable
// Latin-1 bytes map to themselves, the other bytes to U+0100 onwards.
function bytesToUnicode() {
  const keep = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const table = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    table[b] = keep.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(next++);
  }
  return table;
}

// The split pattern of the Llama 3 family, with the whitespace rule
// \s+(?!\S) that keeps the last space of a run for the following word.
const SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The same pattern for JavaScript's RegExp, which has no inline (?i:...)
// group: the contractions are spelled out in both cases.
const SPLIT_PATTERN_JS =
  "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const TRAINING_TEXT = [
  "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs into the forest.",
  "A tokenizer splits text into pieces; the model then reads the pieces as numbers. Numbers like 2024 and 3.14159 are split into groups of three digits.",
  "I'm sure you're right, but they'll say we've done what he'd never do. Don't worry: it's fine.",
  "    indented code\n\tfunc main() {\n\t\treturn 42\n\t}\n\r\nWindows line endings\r\n",
  "Привет, мир! Это небольшой текст на русском языке.",
  "你好，世界。今天天气很好，我们去公园散步。",
  "Generate an image of a red apple on a wooden table, in the style of an oil painting.",
  "<think> reasoning process here </think> answer here",
].join('\n');

function preTokenize(text) {
  const re = new RegExp(SPLIT_PATTERN_JS, 'gu');
  return text.match(re) || [];
}

// Trains numMerges merges with plain counting; ties go to the pair whose
// "left right" string sorts first, so the result does not depend on map order.
function trainMerges(text, byteTable, numMerges) {
  const counts = new Map();
  for (const piece of preTokenize(text)) {
    const mapped = Array.from(Buffer.from(piece, 'utf8'), (b) => byteTable[b]).join('');
    counts.set(mapped, (counts.get(mapped) || 0) + 1);
  }
  const words = Array.from(counts.entries()).map(([w, n]) => ({ symbols: Array.from(w), count: n }));
  const merges = [];
  for (let m = 0; m < numMerges; m++) {
    const pairs = new Map();
    for (const w of words) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const key = w.symbols[i] + ' ' + w.symbols[i + 1];
        pairs.set(key, (pairs.get(key) || 0) + w.count);
      }
    }
    let best = null;
    let bestCount = 0;
    for (const [key, n] of pairs) {
      if (n > bestCount || (n === bestCount && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (best === null) break;
    const [left, right] = best.split(' ');
    merges.push([left, right]);
    for (const w of words) {
      const out = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === left && w.symbols[i + 1] === right) {
          out.push(left + right);
          i++;
        } else {
          out.push(w.symbols[i]);
        }
      }
      w.symbols = out;
    }
  }
  return merges;
}

function addedToken(id, content, special, extra) {
  return Object.assign(
    { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special },
    extra || {},
  );
}

// tiny-bytelevel: ByteLevel BPE with the Split pattern above, special tokens
// of the MMaDA/LLaDA family and a few added tokens with the lstrip, rstrip,
// single_word and normalized options.
function buildByteLevel() {
  const byteTable = bytesToUnicode();
  const vocab = {};
  byteTable.forEach((ch, b) => { vocab[ch] = b; });
  const merges = trainMerges(TRAINING_TEXT, byteTable, 300);
  for (const [a, b] of merges) {
    if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
  }
  let next = Object.keys(vocab).length;
  const added = [
    addedToken(next++, '<|startoftext|>', true),
    addedToken(next++, '<|endoftext|>', true),
    addedToken(next++, '<|start_header_id|>', true),
    addedToken(next++, '<|end_header_id|>', true),
    addedToken(next++, '<|eot_id|>', true),
    addedToken(next++, '<|mdm_mask|>', true),
    addedToken(next++, '<|eot|>', true),
    addedToken(next++, '<| 图 |>', true),
    addedToken(next++, '<|café|>', true),
    addedToken(next++, '<think>', false),
    addedToken(next++, '</think>', false),
    addedToken(next++, '<mask>', false, { lstrip: true, rstrip: true }),
    addedToken(next++, 'word', false, { single_word: true, normalized: true }),
  ];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => a + ' ' + b),
    },
  };
}

// tiny-fallback: a BPE over printable ASCII with byte_fallback (every other
// character becomes <0xNN> byte tokens), ignore_merges, an NFC normalizer,
// a Split pre-tokenizer that drops whitespace, and the ByteFallback + Fuse
// decoders.
function buildFallback() {
  const vocab = {};
  let next = 0;
  for (let b = 0; b < 256; b++) {
    vocab['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'] = next++;
  }
  for (let c = 0x21; c <= 0x7e; c++) vocab[String.fromCharCode(c)] = next++;

  const merges = [];
  const words = ['th', 'the', 'in', 'ing', 'er', 'an', 'and', 'to', 'ok', 'en', 'ize', 'iz', 'oken'];
  for (const w of ['th', 'in', 'er', 'an', 'to', 'ok', 'en', 'iz']) merges.push([w[0], w[1]]);
  merges.push(['th', 'e'], ['in', 'g'], ['an', 'd'], ['iz', 'e'], ['ok', 'en']);
  for (const w of words) if (!(w in vocab)) vocab[w] = next++;

  // Whole words that no merge sequence reaches: only ignore_merges finds them.
  for (const w of ['tokenizer', 'hello']) vocab[w] = next++;
  // é (NFC form) has its own token; other non-ASCII characters fall back to bytes.
  vocab['é'] = next++;

  const added = [
    addedToken(next++, '<s>', true),
    addedToken(next++, '</s>', true),
  ];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Split',
      pattern: { Regex: '\\s+' },
      behavior: 'Removed',
      invert: false,
    },
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: true,
      ignore_merges: true,
      vocab,
      merges: merges.map(([a, b]) => [a, b]),
    },
  };
}

module.exports = { buildByteLevel, buildFallback, SPLIT_PATTERN };

if (require.main === module) {
  console.log(JSON.stringify(buildByteLevel()).length, JSON.stringify(buildFallback()).length);
}
