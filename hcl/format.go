package hcl

import (
	"bytes"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// FormatResult is the outcome of formatting one file.
type FormatResult struct {
	Path      string
	Original  []byte
	Formatted []byte
}

// Changed reports whether formatting changes the file.
func (r FormatResult) Changed() bool { return !bytes.Equal(r.Original, r.Formatted) }

// FormatFile formats one file in canonical style. A file with syntax
// errors is not formatted: the diagnostics say why.
func FormatFile(path string) (FormatResult, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return FormatResult{Path: path}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read file", Detail: fmt.Sprintf("%s: %s", path, pathErrText(err))}}
	}
	out, diags := FormatSource(src, path)
	return FormatResult{Path: path, Original: src, Formatted: out}, diags
}

// FormatSource formats HCL source. It refuses input that does not parse,
// since hclwrite would otherwise reformat broken text unpredictably.
func FormatSource(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	if _, diags := hclparse.NewParser().ParseHCL(src, filename); diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), nil
}
