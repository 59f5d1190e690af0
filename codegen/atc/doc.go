// Package atc drives Huawei's ATC converter, which compiles an ONNX model
// into an Ascend offline model (.om).
//
// Options describes one conversion; Args turns it into ATC's command line
// and CommandLine into a shell command for users who run ATC on another
// machine. Run executes ATC in the model's directory with a timeout, turns
// a failure into an *Error that carries the error code, the message and the
// failing operator when the output names one, and checks the written OM file
// with om.Inspect. Find locates the atc executable.
//
// # Command line
//
// Args writes, in this order:
//
//	--framework=5 --model=transformer.onnx --output=om/transformer --soc_version=Ascend910B3
//	--input_shape=input_ids:1,-1;attention_bias:1,1,-1,-1 --dynamic_dims=128,128,128;256,256,256
//	--input_format=ND --precision_mode_v2=fp16 --log=error
//
// --input_shape separates inputs with ";" and dimensions with ","; -1 marks
// a dynamic dimension and "name:" a scalar. Each --dynamic_dims gear lists a
// value for every -1 across all inputs, in order; gears are separated by
// ";". ATC takes 2 to 100 gears and requires --input_format=ND with them.
// --precision_mode_v2 cannot be combined with --precision_mode.
//
// # What is unconfirmed
//
// No CANN toolkit and no Ascend NPU were available while this package was
// written. Flag names, value syntax, SoC names, precision modes and output
// shapes come from the open-source CANN 8.5 sources and documentation
// (github.com/hicann/ge: api/atc/ and docs/zh/user_guides/atc_tools/) and
// from public CANN 8.0-era material. The tests run stand-in shell scripts
// in place of atc. Not confirmed on a real installation:
//   - that CANN 8.0, which is closed source, accepts the same flags, in
//     particular --precision_mode_v2 (documented since CANN 7.0);
//   - the SoC table (see KnownSoCs): no name was tried, the plain
//     "Ascend910" is rejected because no public list contains it, and
//     bfloat16 support is assumed only for Atlas A2 and A3 chips;
//   - the exit status of a failed run (255 read from the source, not
//     observed); Run treats every non-zero status as failure;
//   - the exact wording of error reports. The op name and type come from
//     patterns seen in public output (op[NAME], node:NAME(TYPE),
//     "for [NAME], optype [TYPE]", "optype ai.onnx::19::Add"); other
//     wordings leave Error.Op and Error.OpType empty;
//   - that running ATC from the model's directory is needed for external
//     tensor data. The parser resolves data locations relative to the .onnx
//     file, and public scripts advise running from there.
package atc
