// Package frontend reads the files a user brings to mmadac: Hugging Face
// checkpoints (config.json and safetensors weights) and small safetensors
// files of inputs and reference vectors. Tokenizers and images have their own
// packages, frontend/tokenizer and frontend/imageio. The package builds no
// graphs; the models package turns what it reads into IR.
//
// # Checkpoints
//
// OpenCheckpoint accepts a checkpoint folder (sharded with
// model.safetensors.index.json, or a single model.safetensors or
// pytorch_model.safetensors), an index file, or one .safetensors file. The
// dtypes F32, F16, BF16, F64, I64, I32 and BOOL are supported. Headers are
// validated strictly, and each problem is an error naming the file and the
// tensor. The checks cover truncated files, headers that are not JSON, data
// offsets outside the data section, sizes that disagree with dtype and shape,
// and overlapping tensors. In a sharded checkpoint, a missing shard and a
// tensor that the index lists but its shard lacks are errors too.
//
// LoadLLaDAConfig and ParseLLaDAConfig read config.json into LLaDAConfig,
// whose Validate method rejects what the transformer cannot build.
//
// # Lazy weights
//
// Opening a checkpoint reads only the file headers: for the 16 GB MMaDA-8B
// checkpoint, about 32 KB of JSON. Tensor data is
// reached through ir.WeightSource: Location gives the file and byte range,
// which codegen can reference in place, and Bytes memory-maps the file on
// first use and returns a read-only view of it, without copying. Only
// Checkpoint.Tensor and Checkpoint.TensorF32 copy data into memory. Views
// stay valid until Checkpoint.Close, which unmaps the files; touching a view
// after Close is a memory fault.
//
// # Writing
//
// WriteSafetensors writes small tensor maps (model outputs, test vectors).
// WriteSparseSafetensors and WriteSparseCheckpoint write a header followed by
// a hole, a stand-in for a full-size checkpoint that takes almost no disk;
// LoadManifest reads the name and shape lists they are built from. Every
// writer goes through a temporary file and a rename, so that a failure never
// leaves a partial file.
//
// # Errors
//
// Functions return plain errors, wrapped with fmt.Errorf so that callers can
// test them with errors.Is and errors.As; nothing panics across the package
// API. Problems in a safetensors file or index are *FormatError values,
// which carry the file and tensor name.
package frontend
