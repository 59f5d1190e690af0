// Package om reads and writes the container of Huawei Ascend offline model
// (.om) files: the 256-byte header and the partition tables. It does not
// decode the partitions themselves (the ModelDef protobuf, weights, tasks,
// kernels); those stay opaque byte ranges.
//
// # File layout
//
// An OM file is little-endian. The header holds, at these byte offsets:
// 0 magic (0x444F4D49, the bytes "IMOD"), 4 headsize (256), 8 version,
// 12 checksum[64], 76 length, 80 is_encrypt, 81 is_checksum, 82 modeltype,
// 83 genmode, 84 name[32], 116 ops, 120 userdefineinfo[32], 152 om_ir_version,
// 156 model_num, 160 platform_version[20], 180 platform_type, 184 model_length
// (u64), 192 need_check_os_cpu_info, 193 is_unknow_model (1 = dynamic
// shape), 194 reserved[62].
//
// The body (file size minus 256, stored in model_length, or in length when
// model_length is 0) holds max(model_num, 1) repetitions of a partition
// table followed by that table's payloads. When model_length is non-zero or
// the model is a flow model, table entries are 24 bytes (u32 type, padding,
// u64 offset, u64 size) after an 8-byte count. Otherwise they are 12 bytes
// (u32 type, u32 offset, u32 size) after a 4-byte count. Offsets are
// relative to the first byte after the table.
//
// # Sources and what is unconfirmed
//
// No CANN toolkit and no Ascend NPU were available while this package was
// written. The layout was read from the open-source graph engine of CANN 8.5
// (github.com/hicann/ge: ModelFileHeader and ModelPartitionType in
// inc/framework/common/framework_types_internal.h, the loader checks in
// base/common/helper/model_parser_base.cc and om_file_helper.cc). The tests
// use files built byte by byte from that description, not files that ATC
// wrote, so these points remain unconfirmed:
//   - that CANN 8.0, which is closed source, writes the same header (older
//     releases are known to share the layout up to offset 180 only);
//   - that the offsets stored in the table equal the running sum of the
//     preceding sizes. The CANN 8.5 loader ignores the stored offsets and
//     walks the sizes; its writer stores the running sum unless partitions
//     are aligned. Parse rejects a file whose offsets differ, so an aligned
//     file (if ATC ever writes one) would be reported as having a gap;
//   - which value the length field holds when model_length is set.
//
// Parse is stricter than the CANN loader in two places: it requires the last
// table's payloads to end exactly at the end of the file even for a
// single-model file, and it rejects encrypted bodies because their tables
// cannot be read.
package om
