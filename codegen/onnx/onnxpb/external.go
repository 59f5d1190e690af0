package onnxpb

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
)

// Keys of TensorProto.external_data entries, as the ONNX external-data
// convention defines them.
const (
	ExternalLocation = "location" // file path relative to the model file's directory
	ExternalOffset   = "offset"   // byte offset of the data in that file, decimal
	ExternalLength   = "length"   // number of data bytes, decimal
	ExternalChecksum = "checksum" // SHA-1 of the file, hex; optional
)

// ExternalRef locates the bytes of a tensor stored outside the model file.
type ExternalRef struct {
	// Location is the file path relative to the directory of the .onnx file.
	Location string
	// Offset is the position of the first byte in that file.
	Offset int64
	// Length is the number of bytes; -1 means "to the end of the file", which
	// is what a missing length entry means.
	Length int64
}

// SetExternal marks t as stored outside the model: it clears the inline
// data fields, sets data_location to EXTERNAL and writes the location,
// offset and length entries. A negative ref.Length omits the length entry.
func SetExternal(t *TensorProto, ref ExternalRef) {
	t.RawData = nil
	t.FloatData, t.Int32Data, t.Int64Data = nil, nil, nil
	t.DoubleData, t.Uint64Data, t.StringData = nil, nil, nil
	t.DataLocation = TensorProto_EXTERNAL.Enum()
	t.ExternalData = []*StringStringEntryProto{
		{Key: proto.String(ExternalLocation), Value: proto.String(ref.Location)},
		{Key: proto.String(ExternalOffset), Value: proto.String(strconv.FormatInt(ref.Offset, 10))},
	}
	if ref.Length >= 0 {
		t.ExternalData = append(t.ExternalData, &StringStringEntryProto{
			Key: proto.String(ExternalLength), Value: proto.String(strconv.FormatInt(ref.Length, 10)),
		})
	}
}

// External reads the external-data reference of t. It returns ok=false for a
// tensor whose data is inline, and an error when data_location is EXTERNAL
// but the entries are missing a location, hold a non-numeric or negative
// offset or length, or repeat a key.
func External(t *TensorProto) (ref ExternalRef, ok bool, err error) {
	if t.GetDataLocation() != TensorProto_EXTERNAL {
		return ExternalRef{}, false, nil
	}
	ref.Length = -1
	seen := map[string]bool{}
	for _, e := range t.GetExternalData() {
		key, value := e.GetKey(), e.GetValue()
		if seen[key] {
			return ExternalRef{}, true, fmt.Errorf("tensor %q: external_data key %q appears twice", t.GetName(), key)
		}
		seen[key] = true
		switch key {
		case ExternalLocation:
			ref.Location = value
		case ExternalOffset, ExternalLength:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return ExternalRef{}, true, fmt.Errorf("tensor %q: external_data %s %q is not a non-negative decimal integer", t.GetName(), key, value)
			}
			if key == ExternalOffset {
				ref.Offset = n
			} else {
				ref.Length = n
			}
		}
	}
	if ref.Location == "" {
		return ExternalRef{}, true, fmt.Errorf("tensor %q: data_location is EXTERNAL but external_data has no %q entry", t.GetName(), ExternalLocation)
	}
	return ref, true, nil
}
