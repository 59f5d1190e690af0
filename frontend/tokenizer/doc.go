// Package tokenizer reads a Hugging Face tokenizer.json and encodes text to
// token ids and back, with the same results as Hugging Face's Rust
// tokenizers (checked against version 0.22.2).
//
// # What is supported
//
// The model is BPE with merges (as "a b" strings or as pairs), with
// ignore_merges, byte_fallback, unk_token with fuse_unk,
// continuing_subword_prefix and end_of_word_suffix. Dropout is rejected
// because it makes encoding random.
//
// Normalizers: NFC, NFD, NFKC, NFKD and Sequence. Pre-tokenizers: Split (regex
// or string pattern, every split behavior, invert), ByteLevel (with or without
// its GPT-2 regex, add_prefix_space) and Sequence. Decoders: ByteLevel,
// ByteFallback, Fuse, Strip, Replace (string pattern) and Sequence. Any other
// component type makes Load fail with an error that names it. Post-processors
// are ignored, because Encode never adds special tokens.
//
// Added tokens (special or not) are found in the text before normalization
// (or after it, for tokens marked "normalized"), leftmost-longest, with their
// lstrip, rstrip and single_word options. Decode with skipSpecial drops only
// the tokens marked special.
//
// # Why not github.com/sugarme/tokenizer
//
// sugarme/tokenizer v0.3.0 was tried first on the Llama 3, Qwen 3 and GPT-4o
// tokenizer.json files. Its loader compiles the Split pattern with Go's
// regexp package, which has no look-ahead, so `\s+(?!\S)` in all three
// patterns makes it panic inside regexp.MustCompile while loading: it cannot
// load any tokenizer of this family. Its model also has no ignore_merges
// option, which Llama 3 sets. This package therefore implements the pipeline
// itself and runs the split patterns with github.com/dlclark/regexp2, a
// backtracking engine with look-around.
//
// # Regex semantics
//
// The Rust library runs these patterns with Oniguruma; regexp2 follows .NET
// syntax. They agree on everything the patterns of this family use: \s is
// Unicode White_Space in both, \p{L}, \p{N} and the other categories come
// from the Unicode tables (Go's, in regexp2), and (?i:...) groups fold case
// simply. The reference tests in testdata cover whitespace runs before words,
// newlines, tabs, Unicode spaces and letters of many scripts.
//
// # Invalid UTF-8
//
// A Rust &str cannot hold invalid UTF-8, so Encode first replaces each
// maximal invalid byte sequence of its input with U+FFFD, the conversion of
// Rust's String::from_utf8_lossy. Decode treats invalid UTF-8 in the decoded
// bytes the same way.
//
// # Concurrency
//
// A Tokenizer is read-only after Load, except for a word cache guarded by a
// mutex, so it is safe for concurrent use.
package tokenizer
