package om

import (
	"fmt"
	"math"
	"os"
)

// Builder describes an OM file for Build. The result is structurally valid
// (Parse accepts it) but its payloads are whatever the caller supplies, so
// the CANN runtime would not load it unless they are real. Tests and the
// stand-in for ATC use it.
type Builder struct {
	// Name is the model name, at most 31 bytes.
	Name string
	// Version is the header version. 0 selects VersionCANN85.
	Version uint32
	// ModelType is the header's modeltype. The zero value is ModelTypeIR.
	ModelType ModelType
	// PlatformVersion is stored in the 20-byte field, at most 20 bytes.
	PlatformVersion string
	// PlatformType is stored as is.
	PlatformType uint8
	// OMIRVersion is stored as is.
	OMIRVersion uint32
	// Dynamic sets is_unknow_model to 1.
	Dynamic bool
	// TinyTable writes 12-byte table entries and stores the body size in
	// length with model_length 0, as older CANN releases do. It is not
	// allowed for flow models and needs a body below 4 GiB. Otherwise the
	// file uses 24-byte entries and model_length.
	TinyTable bool
	// Models holds the partitions of each model, one table per model. It
	// must not be empty, and each model needs 1 to MaxPartitions partitions
	// (MaxFlowPartitions for flow models) with at least one non-empty payload.
	Models [][]Payload
}

// Payload is the content of one partition.
type Payload struct {
	Type PartitionType
	Data []byte
}

// Build serializes b: the header, then per model its partition table
// followed by the payloads back to back.
func Build(b Builder) ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}

	headerSize, entrySize := wideTableHeaderSize, wideEntrySize
	if b.TinyTable {
		headerSize, entrySize = tinyTableHeaderSize, tinyEntrySize
	}
	var bodySize uint64
	for _, parts := range b.Models {
		bodySize += uint64(headerSize + len(parts)*entrySize)
		for _, p := range parts {
			bodySize += uint64(len(p.Data))
		}
	}
	if b.TinyTable && bodySize > math.MaxUint32 {
		return nil, fmt.Errorf("build OM: body of %d bytes does not fit the 32-bit length field; set TinyTable to false", bodySize)
	}

	out := make([]byte, HeaderSize, HeaderSize+bodySize)
	b.putHeader(out, bodySize)
	for _, parts := range b.Models {
		out = appendTable(out, parts, b.TinyTable)
		for _, p := range parts {
			out = append(out, p.Data...)
		}
	}
	return out, nil
}

// WriteFile builds b and writes it to path with permissions 0644.
func WriteFile(path string, b Builder) error {
	data, err := Build(b)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write OM file: %w", err)
	}
	return nil
}

func (b *Builder) validate() error {
	if len(b.Name) >= nameLen {
		return fmt.Errorf("build OM: name %q is %d bytes; the header holds at most %d", b.Name, len(b.Name), nameLen-1)
	}
	if len(b.PlatformVersion) > platformVersionLen {
		return fmt.Errorf("build OM: platform version %q is %d bytes; the header holds at most %d",
			b.PlatformVersion, len(b.PlatformVersion), platformVersionLen)
	}
	if b.TinyTable && b.ModelType == ModelTypeFlow {
		return fmt.Errorf("build OM: flow models always use 24-byte table entries; set TinyTable to false")
	}
	if len(b.Models) == 0 {
		return fmt.Errorf("build OM: no models; add at least one list of partitions to Models")
	}
	maxParts := MaxPartitions
	if b.ModelType == ModelTypeFlow {
		maxParts = MaxFlowPartitions
	}
	for m, parts := range b.Models {
		if len(parts) < 1 || len(parts) > maxParts {
			return fmt.Errorf("build OM: model %d has %d partitions; a %s model needs 1 to %d", m, len(parts), b.ModelType, maxParts)
		}
		total := 0
		for _, p := range parts {
			total += len(p.Data)
			if b.TinyTable && uint64(len(p.Data)) > math.MaxUint32 {
				return fmt.Errorf("build OM: %s partition of model %d is %d bytes, too large for a 12-byte table entry", p.Type, m, len(p.Data))
			}
		}
		if total == 0 {
			return fmt.Errorf("build OM: all partitions of model %d are empty; the loader rejects a model without payload", m)
		}
	}
	return nil
}

func (b *Builder) putHeader(h []byte, bodySize uint64) {
	version := b.Version
	if version == 0 {
		version = VersionCANN85
	}
	le.PutUint32(h[offMagic:], Magic)
	le.PutUint32(h[offHeadSize:], HeaderSize)
	le.PutUint32(h[offVersion:], version)
	// is_checksum stays 0 (CHECK) and the checksum all zeros, the defaults of
	// CANN's ModelFileHeader struct.
	h[offModelType] = uint8(b.ModelType)
	copy(h[offName:offName+nameLen-1], b.Name)
	le.PutUint32(h[offOMIRVersion:], b.OMIRVersion)
	le.PutUint32(h[offModelNum:], uint32(len(b.Models)))
	copy(h[offPlatformVer:offPlatformVer+platformVersionLen], b.PlatformVersion)
	h[offPlatformType] = b.PlatformType
	if b.TinyTable {
		le.PutUint32(h[offLength:], uint32(bodySize))
	} else {
		le.PutUint64(h[offModelLength:], bodySize)
		if bodySize <= math.MaxUint32 {
			le.PutUint32(h[offLength:], uint32(bodySize))
		}
	}
	if b.Dynamic {
		h[offIsUnknownModel] = 1
	}
}

// appendTable appends the partition table of one model, with offsets
// relative to the first byte after the table.
func appendTable(out []byte, parts []Payload, tiny bool) []byte {
	out = le.AppendUint32(out, uint32(len(parts)))
	if !tiny {
		out = le.AppendUint32(out, 0) // padding before the 8-byte-aligned entries
	}
	var offset uint64
	for _, p := range parts {
		size := uint64(len(p.Data))
		out = le.AppendUint32(out, uint32(p.Type))
		if tiny {
			out = le.AppendUint32(out, uint32(offset))
			out = le.AppendUint32(out, uint32(size))
		} else {
			out = le.AppendUint32(out, 0) // padding
			out = le.AppendUint64(out, offset)
			out = le.AppendUint64(out, size)
		}
		offset += size
	}
	return out
}
