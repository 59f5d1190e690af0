package onnxpb

import (
	"encoding/json"
	"os/exec"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// dumpOfficialDescriptors prints, as JSON, every field and enum value of the
// messages this schema models, read from the descriptors compiled into the
// onnx Python package.
const dumpOfficialDescriptors = `
import json, onnx
out = {}
def walk(d):
    fields = {}
    for f in d.fields:
        fields[f.name] = {
            "number": f.number,
            "label": f.label,
            "type": f.type,
            "packed": f.GetOptions().packed,
            "oneof": f.containing_oneof.name if f.containing_oneof else "",
        }
    enums = {e.name: {v.name: v.number for v in e.values} for e in d.enum_types}
    out[d.full_name] = {"fields": fields, "enums": enums}
    for n in d.nested_types:
        walk(n)
for name in ["ModelProto", "GraphProto", "NodeProto", "AttributeProto", "TensorProto",
             "ValueInfoProto", "TypeProto", "TensorShapeProto", "OperatorSetIdProto",
             "StringStringEntryProto"]:
    walk(getattr(onnx, name).DESCRIPTOR)
print(json.dumps(out))
`

type officialField struct {
	Number int32  `json:"number"`
	Label  int32  `json:"label"`
	Type   int32  `json:"type"`
	Packed bool   `json:"packed"`
	Oneof  string `json:"oneof"`
}

type officialMessage struct {
	Fields map[string]officialField    `json:"fields"`
	Enums  map[string]map[string]int32 `json:"enums"`
}

// TestSchemaMatchesOfficial checks every field and enum value of onnx.proto
// against the official schema as compiled into the installed onnx package.
// Enum values that the installed onnx predates (newer element types) are
// skipped, and so are fields that it has but this schema leaves out.
func TestSchemaMatchesOfficial(t *testing.T) {
	requireOnnxPython(t)
	out, err := exec.Command(systemPython, "-c", dumpOfficialDescriptors).Output()
	if err != nil {
		t.Fatalf("dump official descriptors: %v", err)
	}
	official := map[string]officialMessage{}
	if err := json.Unmarshal(out, &official); err != nil {
		t.Fatalf("parse official descriptors: %v", err)
	}

	compared := 0
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		name := string(md.FullName())
		want, ok := official[name]
		if !ok {
			t.Errorf("message %s is not in the official schema", name)
			return
		}
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			w, ok := want.Fields[string(fd.Name())]
			if !ok {
				t.Errorf("%s.%s is not in the official schema", name, fd.Name())
				continue
			}
			compared++
			if int32(fd.Number()) != w.Number {
				t.Errorf("%s.%s: number %d, official %d", name, fd.Name(), fd.Number(), w.Number)
			}
			if int32(fd.Cardinality()) != w.Label {
				t.Errorf("%s.%s: cardinality %v, official label %d", name, fd.Name(), fd.Cardinality(), w.Label)
			}
			if int32(fd.Kind()) != w.Type {
				t.Errorf("%s.%s: kind %v, official type %d", name, fd.Name(), fd.Kind(), w.Type)
			}
			if fd.IsPacked() != w.Packed {
				t.Errorf("%s.%s: packed %v, official %v", name, fd.Name(), fd.IsPacked(), w.Packed)
			}
			oneof := ""
			if od := fd.ContainingOneof(); od != nil {
				oneof = string(od.Name())
			}
			if oneof != w.Oneof {
				t.Errorf("%s.%s: oneof %q, official %q", name, fd.Name(), oneof, w.Oneof)
			}
		}
		enums := md.Enums()
		for i := range enums.Len() {
			ed := enums.Get(i)
			wantValues, ok := want.Enums[string(ed.Name())]
			if !ok {
				t.Errorf("enum %s.%s is not in the official schema", name, ed.Name())
				continue
			}
			values := ed.Values()
			for j := range values.Len() {
				vd := values.Get(j)
				n, ok := wantValues[string(vd.Name())]
				if !ok {
					continue // newer than the installed onnx
				}
				compared++
				if int32(vd.Number()) != n {
					t.Errorf("%s.%s: value %d, official %d", ed.FullName(), vd.Name(), vd.Number(), n)
				}
			}
		}
		nested := md.Messages()
		for i := range nested.Len() {
			walk(nested.Get(i))
		}
	}
	messages := File_onnx_proto.Messages()
	for i := range messages.Len() {
		walk(messages.Get(i))
	}
	if compared < 100 {
		t.Errorf("compared only %d fields and enum values; the official dump looks incomplete", compared)
	}
}
