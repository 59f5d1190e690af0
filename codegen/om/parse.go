package om

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

var le = binary.LittleEndian

// Inspect reads the header and partition tables of the OM file at path. It
// reads only those parts, so files of many gigabytes inspect quickly.
func Inspect(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspect OM file: %w", err)
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspect OM file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("inspect OM file %s: not a regular file (mode %s)", path, st.Mode())
	}

	info, err := ParseReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	return info, nil
}

// Parse reads the header and partition tables of an OM file held in memory.
func Parse(data []byte) (*Info, error) {
	return ParseReader(bytes.NewReader(data), int64(len(data)))
}

// ParseReader reads the header and partition tables from r, a file of size
// bytes. It checks what the CANN loader checks before it touches the
// payloads, and more strictly:
//   - the file holds at least the 256-byte header, magic is "IMOD" and
//     headsize is 256;
//   - the body size (model_length, or length when model_length is 0) equals
//     the file size minus 256;
//   - the model name is NUL-terminated and the body is not encrypted;
//   - each of max(model_num, 1) partition tables has 1 to 8 entries (1 to
//     4096 for flow models) and fits in the file;
//   - each entry's offset equals the sum of the sizes before it in its table,
//     so payloads neither overlap nor leave gaps, and the payloads of the
//     last table end exactly at the end of the file.
//
// Every violation is returned as a *FormatError.
func ParseReader(r io.ReaderAt, size int64) (*Info, error) {
	if size < HeaderSize {
		return nil, formatErr("file size", 0, fmt.Sprintf("%d bytes", size),
			fmt.Sprintf("at least the %d-byte header", HeaderSize))
	}

	header := make([]byte, HeaderSize)
	if _, err := r.ReadAt(header, 0); err != nil {
		return nil, fmt.Errorf("read OM header: %w", err)
	}
	info, err := decodeHeader(header, size)
	if err != nil {
		return nil, err
	}
	if err := readTables(r, size, info); err != nil {
		return nil, err
	}
	return info, nil
}

// decodeHeader fills Info from the 256 header bytes and validates the fields
// that do not depend on the partition tables.
func decodeHeader(h []byte, fileSize int64) (*Info, error) {
	info := &Info{
		FileSize:           fileSize,
		Magic:              le.Uint32(h[offMagic:]),
		HeadSize:           le.Uint32(h[offHeadSize:]),
		Version:            le.Uint32(h[offVersion:]),
		Checksum:           hexNonZero(h[offChecksum : offChecksum+checksumLen]),
		Length:             le.Uint32(h[offLength:]),
		IsEncrypt:          h[offIsEncrypt],
		IsChecksum:         h[offIsChecksum],
		ModelType:          ModelType(h[offModelType]),
		GenMode:            h[offGenMode],
		Ops:                le.Uint32(h[offOps:]),
		UserDefineInfo:     hexNonZero(h[offUserDefineInfo : offUserDefineInfo+userDefineInfoLen]),
		OMIRVersion:        le.Uint32(h[offOMIRVersion:]),
		ModelNum:           le.Uint32(h[offModelNum:]),
		PlatformVersion:    cString(h[offPlatformVer : offPlatformVer+platformVersionLen]),
		PlatformType:       h[offPlatformType],
		ModelLength:        le.Uint64(h[offModelLength:]),
		NeedCheckOSCPUInfo: h[offNeedCheckOSCPU],
		IsUnknownModel:     h[offIsUnknownModel],
	}
	info.ModelTypeName = info.ModelType.String()
	info.Dynamic = info.IsUnknownModel == 1

	if info.Magic != Magic {
		return nil, formatErr("magic", offMagic, fmt.Sprintf("0x%08X (bytes %q)", info.Magic, h[offMagic:offMagic+4]),
			fmt.Sprintf("0x%08X (bytes \"IMOD\"); this is not an OM file", Magic))
	}
	if info.HeadSize != HeaderSize {
		return nil, formatErr("headsize", offHeadSize, fmt.Sprint(info.HeadSize), fmt.Sprint(HeaderSize))
	}

	nameField := h[offName : offName+nameLen]
	end := bytes.IndexByte(nameField, 0)
	if end < 0 {
		return nil, formatErr("name", offName, fmt.Sprintf("%d bytes without a NUL terminator (%q)", nameLen, nameField),
			fmt.Sprintf("a NUL-terminated string of at most %d bytes", nameLen-1))
	}
	info.Name = string(nameField[:end])

	body := uint64(fileSize) - HeaderSize
	if info.ModelLength != 0 {
		if info.ModelLength != body {
			return nil, formatErr("model_length", offModelLength, fmt.Sprint(info.ModelLength),
				fmt.Sprintf("%d (file size %d minus the %d-byte header)", body, fileSize, HeaderSize))
		}
	} else if uint64(info.Length) != body {
		return nil, formatErr("length", offLength, fmt.Sprintf("%d (model_length is 0)", info.Length),
			fmt.Sprintf("%d (file size %d minus the %d-byte header)", body, fileSize, HeaderSize))
	}

	if info.IsEncrypt != 0 {
		return nil, formatErr("is_encrypt", offIsEncrypt, fmt.Sprint(info.IsEncrypt),
			"0; the body of an encrypted model cannot be inspected")
	}

	info.TinyTable = info.ModelLength == 0 && info.ModelType != ModelTypeFlow
	info.Models = int(max(info.ModelNum, 1))
	return info, nil
}

// readTables reads the partition table of each model and checks that the
// payloads are laid out back to back up to the end of the file.
func readTables(r io.ReaderAt, fileSize int64, info *Info) error {
	pos := uint64(HeaderSize)
	end := uint64(fileSize)

	for model := 0; model < info.Models; model++ {
		next, err := readTable(r, pos, end, model, info)
		if err != nil {
			return err
		}
		pos = next
	}

	if pos != end {
		return formatErr("body", int64(pos), fmt.Sprintf("followed by %d bytes after the last partition of model %d", end-pos, info.Models-1),
			fmt.Sprintf("the partitions of %d model(s) to end exactly at the end of the file; model_num is %d", info.Models, info.ModelNum))
	}
	return nil
}

// readTable reads the table at pos and returns the position just after its
// last payload.
func readTable(r io.ReaderAt, pos, end uint64, model int, info *Info) (uint64, error) {
	prefix := fmt.Sprintf("model[%d].", model)
	headerSize, entrySize := uint64(wideTableHeaderSize), uint64(wideEntrySize)
	if info.TinyTable {
		headerSize, entrySize = tinyTableHeaderSize, tinyEntrySize
	}

	if end-pos < headerSize {
		return 0, formatErr(prefix+"partition table", int64(pos), fmt.Sprintf("cut off after %d bytes", end-pos),
			fmt.Sprintf("a %d-byte table header; the file is truncated or model_num (%d) is too large", headerSize, info.ModelNum))
	}
	var numBuf [4]byte
	if _, err := r.ReadAt(numBuf[:], int64(pos)); err != nil {
		return 0, fmt.Errorf("read %spartition table: %w", prefix, err)
	}
	num := le.Uint32(numBuf[:])

	maxNum := uint32(MaxPartitions)
	if info.ModelType == ModelTypeFlow {
		maxNum = MaxFlowPartitions
	}
	if num < 1 || num > maxNum {
		return 0, formatErr(prefix+"partition table num", int64(pos), fmt.Sprint(num),
			fmt.Sprintf("1 to %d partitions for a %s model", maxNum, info.ModelType))
	}

	tableSize := headerSize + uint64(num)*entrySize
	if end-pos < tableSize {
		return 0, formatErr(prefix+"partition table", int64(pos), fmt.Sprintf("%d entries needing %d bytes, but only %d bytes remain", num, tableSize, end-pos),
			"a table that fits in the file; the file is truncated")
	}
	table := make([]byte, tableSize)
	if _, err := r.ReadAt(table, int64(pos)); err != nil {
		return 0, fmt.Errorf("read %spartition table: %w", prefix, err)
	}

	payloadStart := pos + tableSize
	var used uint64 // bytes of payload consumed so far in this table
	for i := range num {
		entryPos := pos + headerSize + uint64(i)*entrySize
		e := table[headerSize+uint64(i)*entrySize:]
		p := Partition{Model: model}
		if info.TinyTable {
			p.Type = PartitionType(le.Uint32(e[0:]))
			p.Offset = uint64(le.Uint32(e[4:]))
			p.Size = uint64(le.Uint32(e[8:]))
		} else {
			p.Type = PartitionType(le.Uint32(e[0:]))
			p.Offset = le.Uint64(e[8:])
			p.Size = le.Uint64(e[16:])
		}
		p.TypeName = p.Type.String()
		field := fmt.Sprintf("%spartition[%d]", prefix, i)

		if p.Offset != used {
			relation := "leaves a gap after"
			if p.Offset < used {
				relation = "overlaps"
			}
			return 0, formatErr(field+".offset", int64(entryPos), fmt.Sprintf("%d, which %s the previous partitions", p.Offset, relation),
				fmt.Sprintf("%d, the sum of the sizes before it (payloads follow each other with no gaps)", used))
		}
		p.FileOffset = payloadStart + used
		if p.Size > end-p.FileOffset {
			return 0, formatErr(field+".size", int64(entryPos), fmt.Sprintf("%d (%s payload at byte %d)", p.Size, p.TypeName, p.FileOffset),
				fmt.Sprintf("at most %d, the bytes left in the file; the file is truncated", end-p.FileOffset))
		}
		used += p.Size
		info.Partitions = append(info.Partitions, p)
	}

	if used == 0 {
		return 0, formatErr(prefix+"partition sizes", int64(pos), "0 bytes in total", "a model with at least one non-empty partition")
	}
	// No overflow is possible: each size was checked against the bytes left.
	return payloadStart + used, nil
}

// cString returns the bytes of b before the first NUL, or all of b.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// hexNonZero returns b in hex with trailing zero bytes removed, or "" when b
// is all zeros.
func hexNonZero(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}
