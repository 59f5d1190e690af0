// Run an ONNX model exported by bench/export_onnx.py under ONNX Runtime
// (the onnxruntime-node package) and print its logits.
//
// Usage: node bench/ort_logits.js MODEL.onnx < request.json > response.json
// request:  {"input_ids": {"shape": [B, L], "data": [...]},
//            "attention_mask": {"shape": [B, L], "data": [...]}}
// response: {"shape": [B, L, V], "data": [...float32 values...]}
//
// The package is looked up in $MMADAC_CACHE/npm (default
// ~/.cache/mmadac/npm), where scripts/setup.sh installs it.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

function loadOrt() {
  const cache = process.env.MMADAC_CACHE || path.join(os.homedir(), ".cache", "mmadac");
  const location = path.join(cache, "npm", "node_modules", "onnxruntime-node");
  try {
    return require(location);
  } catch (err) {
    console.error(`onnxruntime-node not found at ${location} (${err.message}); run scripts/setup.sh`);
    process.exit(2);
  }
}

function int64Tensor(ort, name, spec) {
  if (!spec || !Array.isArray(spec.shape) || !Array.isArray(spec.data)) {
    throw new Error(`request field ${name} must be {"shape": [...], "data": [...]}`);
  }
  return new ort.Tensor("int64", BigInt64Array.from(spec.data, (v) => BigInt(v)), spec.shape);
}

async function main() {
  if (process.argv.length !== 3) {
    console.error("usage: node ort_logits.js MODEL.onnx < request.json");
    process.exit(2);
  }
  const ort = loadOrt();
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  const session = await ort.InferenceSession.create(process.argv[2]);
  const feeds = {
    input_ids: int64Tensor(ort, "input_ids", request.input_ids),
    attention_mask: int64Tensor(ort, "attention_mask", request.attention_mask),
  };
  const result = await session.run(feeds);
  const logits = result.logits;
  process.stdout.write(JSON.stringify({ shape: logits.dims, data: Array.from(logits.data) }));
}

main().catch((err) => {
  console.error(`ort_logits: ${err.stack || err}`);
  process.exit(1);
});
