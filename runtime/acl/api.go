package acl

import "github.com/mmadac/mmadac/ir"

// Declarations shared by the cgo build and the CGO_ENABLED=0 build.

// EnvLibrary names the environment variable that overrides the library path
// when Load gets an empty path.
const EnvLibrary = "MMADAC_ACL_LIB"

// DefaultLibrary is the file name that Load passes to the dynamic loader
// when neither an argument nor EnvLibrary gives a path. The loader then
// searches LD_LIBRARY_PATH, which the CANN set_env.sh script extends.
const DefaultLibrary = "libascendcl.so"

// GearInputName is the model input through which the runtime receives the
// selected gear (ACL_DYNAMIC_TENSOR_NAME in acl_mdl.h). ATC adds it to models
// built with --dynamic_dims. Session allocates and fills it, so callers
// never pass it to Run.
const GearInputName = "ascend_mbatch_shape_data"

// TensorInfo describes one model input or output as the model description
// reports it.
type TensorInfo struct {
	// Name is the tensor name that Run uses as the map key.
	Name string
	// Index is the position in the model's input or output list.
	Index int
	// DType is the element type.
	DType ir.DType
	// Shape holds the dimensions; -1 marks a dimension that the selected gear
	// decides.
	Shape []int64
	// Size is the device buffer size in bytes, which for a model with gears
	// fits the largest gear.
	Size int64
}
