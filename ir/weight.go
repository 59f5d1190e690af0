package ir

// WeightSource gives access to the bytes of one stored tensor without
// loading it: a checkpoint implements it with a memory map, so building a
// graph for an 8B checkpoint reads only the file headers.
type WeightSource interface {
	// Location returns the file holding the raw little-endian data and its
	// byte range inside that file, so that codegen can link the data in
	// place (ONNX external data) instead of copying it.
	Location() (file string, offset, size int64)
	// Bytes returns the raw little-endian data. Implementations map the file
	// and return a view; callers must not modify the slice.
	Bytes() ([]byte, error)
}
