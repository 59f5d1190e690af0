package om

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode"
)

// Format writes a readable summary of the header and the partition tables,
// the text that `mmadac inspect FILE.om` prints. It returns the first write
// error.
func (i *Info) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{key}, args...)...)
	}

	row("format", "Ascend OM (magic 0x%08X \"IMOD\", header %d bytes)", i.Magic, i.HeadSize)
	row("file size", "%d bytes (body %d bytes)", i.FileSize, i.FileSize-HeaderSize)
	row("model name", "%s", quoteIfNeeded(i.Name))
	row("version", "0x%08X%s", i.Version, versionNote(i.Version))
	row("model type", "%d (%s)", uint8(i.ModelType), i.ModelType)
	row("generated", "%s", genModeName(i.GenMode))
	row("dynamic shape", "%s (is_unknow_model=%d)", yesNo(i.Dynamic), i.IsUnknownModel)
	row("platform version", "%s", quoteIfNeeded(i.PlatformVersion))
	row("platform type", "%d", i.PlatformType)
	row("om_ir_version", "%d", i.OMIRVersion)
	row("model_num", "%d", i.ModelNum)
	row("length", "%d", i.Length)
	row("model_length", "%d", i.ModelLength)
	row("ops", "%d", i.Ops)
	row("encrypted", "%s (is_encrypt=%d)", yesNo(i.IsEncrypt != 0), i.IsEncrypt)
	row("is_checksum", "%d (0 = CHECK, 1 = UNCHECK)", i.IsChecksum)
	row("checksum", "%s", orNone(i.Checksum))
	row("userdefineinfo", "%s", orNone(i.UserDefineInfo))
	row("need_check_os_cpu_info", "%d", i.NeedCheckOSCPUInfo)
	if i.TinyTable {
		row("partition tables", "%d, 12-byte entries (model_length is 0)", i.Models)
	} else {
		row("partition tables", "%d, 24-byte entries", i.Models)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\t#\ttype\toffset\tsize\tfile offset\t")
	entry := 0 // index of the entry within its model's table
	for idx, p := range i.Partitions {
		if idx > 0 && p.Model != i.Partitions[idx-1].Model {
			entry = 0
		}
		fmt.Fprintf(tw, "%d\t%d\t%s (%d)\t%d\t%d\t%d\t\n",
			p.Model, entry, p.TypeName, uint32(p.Type), p.Offset, p.Size, p.FileOffset)
		entry++
	}
	return tw.Flush()
}

func versionNote(v uint32) string {
	switch v {
	case VersionCANN85:
		return " (CANN 8.5 header)"
	case VersionLegacy:
		return " (pre-8.5 header)"
	}
	return ""
}

func genModeName(mode uint8) string {
	switch mode {
	case 0:
		return "offline (genmode=0)"
	case 1:
		return "online (genmode=1)"
	}
	return fmt.Sprintf("unknown (genmode=%d)", mode)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// quoteIfNeeded returns s unchanged when it is non-empty printable text and
// quoted otherwise, so odd bytes in a header string stay visible.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar || unicode.IsSpace(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
