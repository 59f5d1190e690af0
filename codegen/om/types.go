package om

import "fmt"

// Header layout. All offsets are bytes from the start of the file and all
// integers are little-endian. The layout matches the ModelFileHeader struct of
// CANN 8.5 (hicann/ge, inc/framework/common/framework_types_internal.h).
const (
	// HeaderSize is the fixed size of the file header and the value the
	// headsize field must hold.
	HeaderSize = 256

	// Magic is the value of the first header field. On disk its bytes read
	// "IMOD" ("DOMI" reversed, because the field is little-endian).
	Magic uint32 = 0x444F4D49

	// VersionCANN85 is the header version that CANN 8.5 writes.
	VersionCANN85 uint32 = 0x20000000
	// VersionLegacy is the header version of older CANN releases.
	VersionLegacy uint32 = 0x10000000

	offMagic          = 0
	offHeadSize       = 4
	offVersion        = 8
	offChecksum       = 12
	offLength         = 76
	offIsEncrypt      = 80
	offIsChecksum     = 81
	offModelType      = 82
	offGenMode        = 83
	offName           = 84
	offOps            = 116
	offUserDefineInfo = 120
	offOMIRVersion    = 152
	offModelNum       = 156
	offPlatformVer    = 160
	offPlatformType   = 180
	offModelLength    = 184
	offNeedCheckOSCPU = 192
	offIsUnknownModel = 193

	checksumLen        = 64
	nameLen            = 32
	userDefineInfoLen  = 32
	platformVersionLen = 20
)

// Partition table sizes. The wide form is used when model_length != 0 or for
// a flow model. It starts with u32 num and 4 bytes of padding, followed by num
// entries of {u32 type, 4 bytes padding, u64 offset, u64 size}. The tiny form
// starts with u32 num, followed by num entries of {u32 type, u32 offset,
// u32 size}.
const (
	wideTableHeaderSize = 8
	wideEntrySize       = 24
	tinyTableHeaderSize = 4
	tinyEntrySize       = 12

	// MaxPartitions is the largest partition count that the CANN 8.5 loader
	// accepts for a model that is not a flow model. The smallest is 1.
	MaxPartitions = 8
	// MaxFlowPartitions is the largest partition count of a flow model.
	MaxFlowPartitions = 4096
)

// PartitionType identifies the content of one partition.
type PartitionType uint32

// Partition types of CANN 8.5. Values 13 to 19 are unassigned there.
const (
	ModelDef           PartitionType = 0  // protobuf ge.proto.ModelDef: graph and attributes such as soc_version
	WeightsData        PartitionType = 1  // constant tensors
	TaskInfo           PartitionType = 2  // serialized task list
	TBEKernels         PartitionType = 3  // compiled AI Core kernels
	CustAICPUKernels   PartitionType = 4  // custom AI CPU kernels
	SOBins             PartitionType = 5  // shared objects
	FlowModel          PartitionType = 6  // flow model description
	FlowSubmodel       PartitionType = 7  // flow submodel
	ModelInOutInfo     PartitionType = 8  // input and output tensor descriptions
	StaticTaskDesc     PartitionType = 9  // static task descriptors
	DynamicTaskDesc    PartitionType = 10 // dynamic task descriptors
	TaskParam          PartitionType = 11 // task parameters
	TilingData         PartitionType = 12 // kernel tiling data
	PreModelDesc       PartitionType = 20 // pre-loaded model description
	PreModelSQE        PartitionType = 21 // pre-built submission queue entries
	PreKernelArgs      PartitionType = 22 // pre-built kernel arguments
	PreModelDescExtend PartitionType = 23 // extension of PreModelDesc
	BundleModelInfo    PartitionType = 24 // bundle model information
	BundleModelVarInfo PartitionType = 25 // bundle model variable information
	CustomOps          PartitionType = 26 // custom operator kernels
)

var partitionTypeNames = map[PartitionType]string{
	ModelDef:           "MODEL_DEF",
	WeightsData:        "WEIGHTS_DATA",
	TaskInfo:           "TASK_INFO",
	TBEKernels:         "TBE_KERNELS",
	CustAICPUKernels:   "CUST_AICPU_KERNELS",
	SOBins:             "SO_BINS",
	FlowModel:          "FLOW_MODEL",
	FlowSubmodel:       "FLOW_SUBMODEL",
	ModelInOutInfo:     "MODEL_INOUT_INFO",
	StaticTaskDesc:     "STATIC_TASK_DESC",
	DynamicTaskDesc:    "DYNAMIC_TASK_DESC",
	TaskParam:          "TASK_PARAM",
	TilingData:         "TILING_DATA",
	PreModelDesc:       "PRE_MODEL_DESC",
	PreModelSQE:        "PRE_MODEL_SQE",
	PreKernelArgs:      "PRE_KERNEL_ARGS",
	PreModelDescExtend: "PRE_MODEL_DESC_EXTEND",
	BundleModelInfo:    "BUNDLE_MODEL_INFO",
	BundleModelVarInfo: "BUNDLE_MODEL_VAR_INFO",
	CustomOps:          "CUSTOM_OPS",
}

// String returns the CANN name of the type, or UNKNOWN(n) for a value that
// CANN 8.5 does not define. An unknown type is not an error: newer CANN
// releases may add types.
func (t PartitionType) String() string {
	if name, ok := partitionTypeNames[t]; ok {
		return name
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint32(t))
}

// ModelType is the header's modeltype field.
type ModelType uint8

// Model types of CANN 8.5.
const (
	ModelTypeIR       ModelType = 0
	ModelTypeStandard ModelType = 1
	ModelTypeOMTiny   ModelType = 2
	ModelTypeFlow     ModelType = 3
	ModelTypeLite     ModelType = 4
	ModelTypeBundle   ModelType = 5
)

var modelTypeNames = [...]string{"IR", "standard", "OM tiny", "flow", "lite", "bundle"}

// String returns a readable name, or "unknown(n)" for other values.
func (t ModelType) String() string {
	if int(t) < len(modelTypeNames) {
		return modelTypeNames[t]
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// Info is everything Parse reads from an OM file: the header fields and the
// partition tables. JSON keys are the field names of CANN's C header.
type Info struct {
	// FileSize is the size of the whole file in bytes, header included.
	FileSize int64 `json:"file_size"`

	Magic    uint32 `json:"magic"`
	HeadSize uint32 `json:"headsize"`
	Version  uint32 `json:"version"`
	// Checksum is the 64-byte signature field in lowercase hex, or empty when
	// all bytes are zero.
	Checksum string `json:"checksum,omitempty"`
	// Length is the body size (file size minus header) when ModelLength is 0.
	// Files above 4 GiB store the body size in ModelLength instead.
	Length uint32 `json:"length"`
	// IsEncrypt is 0 for a plain file and 1 for an encrypted body.
	IsEncrypt uint8 `json:"is_encrypt"`
	// IsChecksum follows CANN's ModelCheckType enum, in which 0 means CHECK
	// and 1 means UNCHECK.
	IsChecksum uint8     `json:"is_checksum"`
	ModelType  ModelType `json:"modeltype"`
	// ModelTypeName is ModelType.String(), stored for JSON readers.
	ModelTypeName string `json:"modeltype_name"`
	// GenMode is 0 for a model generated offline (by ATC), 1 for online.
	GenMode uint8 `json:"genmode"`
	// Name is the model name, the bytes before the first NUL of the 32-byte
	// field.
	Name string `json:"name"`
	// Ops is the header's computing-power field, in Kops.
	Ops uint32 `json:"ops"`
	// UserDefineInfo is the 32-byte user field in lowercase hex with
	// trailing zero bytes removed, or empty when all bytes are zero.
	UserDefineInfo string `json:"userdefineinfo,omitempty"`
	OMIRVersion    uint32 `json:"om_ir_version"`
	// ModelNum is the field as stored. A value of 0 is read as one model,
	// as the CANN loader does.
	ModelNum uint32 `json:"model_num"`
	// PlatformVersion is the 20-byte platform string up to its first NUL.
	PlatformVersion    string `json:"platform_version"`
	PlatformType       uint8  `json:"platform_type"`
	ModelLength        uint64 `json:"model_length"`
	NeedCheckOSCPUInfo uint8  `json:"need_check_os_cpu_info"`
	// IsUnknownModel is the header's is_unknow_model byte: 1 marks a model
	// with dynamic shapes.
	IsUnknownModel uint8 `json:"is_unknow_model"`
	// Dynamic reports IsUnknownModel == 1.
	Dynamic bool `json:"dynamic"`

	// TinyTable is true when the partition tables use the 12-byte entry
	// form (model_length == 0 and not a flow model).
	TinyTable bool `json:"tiny_table"`
	// Models is the number of partition tables read: max(ModelNum, 1).
	Models int `json:"models"`
	// Partitions lists the entries of all partition tables in file order.
	Partitions []Partition `json:"partitions"`
}

// Partition is one entry of a partition table.
type Partition struct {
	// Model is the index of the partition table (0 for single-model files).
	Model int `json:"model"`
	// Type identifies the content, and TypeName is Type.String().
	Type     PartitionType `json:"type"`
	TypeName string        `json:"type_name"`
	// Offset is the stored offset, relative to the first byte after the
	// partition table.
	Offset uint64 `json:"offset"`
	// Size is the payload size in bytes.
	Size uint64 `json:"size"`
	// FileOffset is the absolute position of the payload in the file.
	FileOffset uint64 `json:"file_offset"`
}

// FormatError reports an OM file that does not follow the format. It names
// the field, where it is, the value found and what a valid file holds there.
type FormatError struct {
	// Field is the header field or table entry, for example "magic" or
	// "model[0].partition[2].offset".
	Field string
	// Offset is the byte position of the field in the file.
	Offset int64
	// Found describes the value read.
	Found string
	// Expected describes what a valid file contains.
	Expected string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("invalid OM file: %s (byte %d) is %s, expected %s", e.Field, e.Offset, e.Found, e.Expected)
}

func formatErr(field string, offset int64, found, expected string) *FormatError {
	return &FormatError{Field: field, Offset: offset, Found: found, Expected: expected}
}
